#pragma once
// Chat templates: the Jinja subset that models' `chat_template`s use, rendered as transformers'
// apply_chat_template does (a sandboxed jinja2 environment with trim_blocks and lstrip_blocks,
// loop controls, `raise_exception`, a `tojson` that does not escape HTML, `namespace`).
//
// Supported: {{ }}, {% if/elif/else %}, {% for %} (with `loop`, an `if` filter, `else`, unpacking
// of pairs, break/continue), {% set %} (names and namespace attributes), comments, whitespace
// control, the usual operators, tests, filters and the string/dict methods templates call.
// Templates are untrusted: parsing is strict (errors name the line and column) and rendering is
// bounded by ChatTemplateLimits, so a hostile template fails with an ember::Error instead of
// hanging or exhausting memory.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace ember::generation {

struct ChatTemplateLimits {
  size_t max_template_bytes = size_t{1} << 20;
  size_t max_output_bytes = size_t{1} << 22;  // also bounds every string and list built
  int64_t max_steps = int64_t{1} << 22;       // loop iterations and calls, all together
  int max_depth = 64;                         // nesting of blocks and of expressions
};

namespace jinja {
struct Template;
}

class ChatTemplate {
 public:
  // Throws ember::Error "chat template line L, column C: what" for a template it cannot parse.
  explicit ChatTemplate(std::string_view source, ChatTemplateLimits limits = {});
  ~ChatTemplate();
  ChatTemplate(ChatTemplate&&) noexcept;
  ChatTemplate& operator=(ChatTemplate&&) noexcept;

  // Renders with `variables` (a JSON object) as the template's globals. Throws ember::Error for a
  // runtime error; for the template's own raise_exception(message) it is "chat template: message".
  std::string render(const nlohmann::ordered_json& variables) const;

 private:
  std::unique_ptr<jinja::Template> template_;
  ChatTemplateLimits limits_;
};

struct ChatRequest {
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();  // [{"role", "content"}, ...]
  bool add_generation_prompt = true;
  std::string bos_token, eos_token;
  nlohmann::ordered_json tools;  // null: none, as transformers' tools=None
};

// The variables transformers passes (messages, tools, documents, add_generation_prompt and the
// special tokens), rendered with `chat_template`.
std::string apply_chat_template(const ChatTemplate& chat_template, const ChatRequest& request);

}  // namespace ember::generation
