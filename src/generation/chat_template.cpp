#include "ember/generation/chat_template.hpp"

#include "jinja.hpp"

namespace ember::generation {

ChatTemplate::ChatTemplate(std::string_view source, ChatTemplateLimits limits)
    : template_(jinja::parse(source, limits)), limits_(limits) {}
ChatTemplate::~ChatTemplate() = default;
ChatTemplate::ChatTemplate(ChatTemplate&&) noexcept = default;
ChatTemplate& ChatTemplate::operator=(ChatTemplate&&) noexcept = default;

std::string ChatTemplate::render(const nlohmann::ordered_json& variables) const {
  return jinja::render(*template_, variables, limits_);
}

std::string apply_chat_template(const ChatTemplate& chat_template, const ChatRequest& request) {
  nlohmann::ordered_json variables = {
      {"messages", request.messages},   {"tools", request.tools},
      {"documents", nullptr},           {"add_generation_prompt", request.add_generation_prompt},
      {"bos_token", request.bos_token}, {"eos_token", request.eos_token}};
  return chat_template.render(variables);
}

}  // namespace ember::generation
