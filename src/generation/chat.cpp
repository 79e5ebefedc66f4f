#include "ember/generation/chat.hpp"

#include <algorithm>
#include <fstream>
#include <iterator>

#include "ember/base/error.hpp"
#include "ember/formats/gguf.hpp"
#include "ember/formats/json_file.hpp"
#include "ember/generation/kv_session.hpp"

namespace ember::generation {
namespace {

// A special token in tokenizer_config.json: a string, an AddedToken object, or absent/null.
std::string token_text(const nlohmann::json& config, const char* key) {
  if (!config.contains(key) || config[key].is_null()) return "";
  const auto& v = config[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) {
    return v["content"].get<std::string>();
  }
  throw Error("tokenizer_config.json: " + std::string(key) + " is neither a string nor a token");
}

// The text of the token that metadata `id_key` names, or "" when the file has no such id.
std::string gguf_token_text(const GgufFile& file, const char* id_key) {
  const GgufValue* id = file.find(id_key);
  if (id == nullptr) return "";
  const GgufValue* tokens = file.find("tokenizer.ggml.tokens");
  const auto index = id->as_u64();
  const GgufValue::Array* list = tokens ? tokens->as_array() : nullptr;
  if (!index || list == nullptr || *index >= list->size() || !(*list)[*index].as_string()) {
    throw Error(std::string(id_key) + " does not name a token of tokenizer.ggml.tokens");
  }
  return *(*list)[*index].as_string();
}

ChatFormat gguf_chat_format(const std::filesystem::path& path) {
  const GgufFile file = GgufFile::open(path);
  const GgufValue* t = file.find("tokenizer.chat_template");
  if (t == nullptr || t->as_string() == nullptr || t->as_string()->empty()) {
    throw Error(path.string() + ": no tokenizer.chat_template string in its metadata");
  }
  ChatFormat format;
  format.chat_template = *t->as_string();
  if (format.chat_template.size() > ChatTemplateLimits{}.max_template_bytes) {
    throw Error(path.string() + ": tokenizer.chat_template is larger than a chat template may be");
  }
  format.bos_token = gguf_token_text(file, "tokenizer.ggml.bos_token_id");
  format.eos_token = gguf_token_text(file, "tokenizer.ggml.eos_token_id");
  return format;
}

}  // namespace

ChatFormat ChatFormat::from_folder(const std::filesystem::path& folder) {
  std::error_code ec;
  if (!std::filesystem::is_directory(folder, ec) && looks_like_gguf(folder)) {
    return gguf_chat_format(folder);
  }
  const auto path = folder / "tokenizer_config.json";
  if (!std::filesystem::exists(path)) {
    throw Error(path.string() + ": missing (the chat template is read from it)");
  }
  const nlohmann::json config = read_json_file(path);
  ChatFormat format;
  const auto& t = config.contains("chat_template") ? config["chat_template"] : nlohmann::json();
  if (t.is_string()) {
    format.chat_template = t.get<std::string>();
  } else if (t.is_array()) {
    for (const auto& named : t) {
      if (named.is_object() && named.value("name", "") == "default" && named.contains("template") &&
          named["template"].is_string()) {
        format.chat_template = named["template"].get<std::string>();
      }
    }
  }
  // transformers 4.43+ saves the template beside the config instead.
  const auto jinja = folder / "chat_template.jinja";
  if (format.chat_template.empty() && std::filesystem::is_regular_file(jinja)) {
    if (std::filesystem::file_size(jinja) > ChatTemplateLimits{}.max_template_bytes) {
      throw Error(jinja.string() + ": larger than a chat template may be");
    }
    std::ifstream in(jinja, std::ios::binary);
    format.chat_template.assign(std::istreambuf_iterator<char>(in), {});
    if (!in.good() && !in.eof()) throw Error(jinja.string() + ": cannot read");
  }
  if (format.chat_template.empty()) {
    throw Error(path.string() + ": no chat_template (nor a chat_template.jinja beside it)");
  }
  format.bos_token = token_text(config, "bos_token");
  format.eos_token = token_text(config, "eos_token");
  return format;
}

ChatSession::ChatSession(models::CausalLM& model, const tokenizers::Tokenizer& tokenizer,
                         const ChatFormat& format, GenerationConfig config,
                         std::string system_prompt)
    : model_(model),
      tokenizer_(tokenizer),
      template_(format.chat_template),
      format_(format),
      config_(std::move(config)),
      system_prompt_(std::move(system_prompt)),
      cached_(model) {
  reset();
}

void ChatSession::reset() {
  messages_ = nlohmann::ordered_json::array();
  if (!system_prompt_.empty()) {
    messages_.push_back({{"role", "system"}, {"content", system_prompt_}});
  }
  cached_.clear();
}

Generation ChatSession::reply(const std::string& user_text, const TextCallback& on_text) {
  nlohmann::ordered_json messages = messages_;
  messages.push_back({{"role", "user"}, {"content", user_text}});
  const auto render = [&] {
    ChatRequest request;
    request.messages = messages;
    request.add_generation_prompt = true;
    request.bos_token = format_.bos_token;
    request.eos_token = format_.eos_token;
    // The template writes the special tokens itself, as apply_chat_template(tokenize=True).
    const std::vector<uint32_t> encoded =
        tokenizer_.encode_ids(apply_chat_template(template_, request), false);
    return std::vector<int64_t>(encoded.begin(), encoded.end());
  };
  std::vector<int64_t> prompt = render();
  // With context shifting, the oldest turns make room (a turn is a user message and the
  // assistant's answer; the system message and the new message stay).
  const size_t first = !messages.empty() && messages[0].value("role", "") == "system" ? 1 : 0;
  while (config_.context_keep >= 0 &&
         static_cast<int64_t>(prompt.size()) >= cached_.cache.capacity() &&
         messages.size() > first + 1) {
    messages.erase(messages.begin() + static_cast<std::ptrdiff_t>(first));
    if (messages.size() > first + 1 && messages[first].value("role", "") == "assistant")
      messages.erase(messages.begin() + static_cast<std::ptrdiff_t>(first));
    prompt = render();
  }
  if (prompt.empty()) throw Error("chat: the template rendered an empty prompt");
  Generation g = generate_cached(model_, &tokenizer_, prompt, cached_, config_, on_text);
  prompt_tokens_ = static_cast<int64_t>(prompt.size());
  messages.push_back({{"role", "assistant"}, {"content", g.text}});
  messages_ = std::move(messages);
  return g;
}

void ChatSession::save(const std::filesystem::path& path, std::string_view model_identity) const {
  const nlohmann::ordered_json note = {{"ember_chat", 1}, {"messages", messages_}};
  save_kv_session(path, model_identity, cached_, note.dump());
}

void ChatSession::load(const std::filesystem::path& path, std::string_view model_identity) {
  try {
    const std::string note = load_kv_session(path, model_identity, model_.vocab_size(), cached_);
    const auto doc = nlohmann::ordered_json::parse(note, nullptr, false);
    const bool conversation =
        doc.is_object() && doc.value("ember_chat", 0) == 1 && doc.contains("messages") &&
        doc["messages"].is_array() &&
        std::all_of(doc["messages"].begin(), doc["messages"].end(), [](const auto& m) {
          return m.is_object() && m.size() == 2 && m.contains("role") && m["role"].is_string() &&
                 m.contains("content") && m["content"].is_string();
        });
    if (!conversation) {
      throw Error(path.string() +
                  ": a KV session without a chat conversation (saved by --prompt-cache?)");
    }
    messages_ = doc["messages"];
  } catch (...) {
    reset();
    throw;
  }
}

}  // namespace ember::generation
