#pragma once
// Multi-turn chat with a causal LM: the model's chat template renders the conversation, and the
// KV cache of the previous turns is reused for the part of the new prompt that extends them.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "ember/generation/chat_template.hpp"
#include "ember/generation/generate.hpp"

namespace ember::generation {

// A model's chat template and the special tokens it refers to. Any source can fill it (a
// folder's tokenizer_config.json, a GGUF's tokenizer.chat_template metadata).
struct ChatFormat {
  std::string chat_template, bos_token, eos_token;

  // tokenizer_config.json's chat_template (a string, or a list of {name, template}: "default"),
  // else the folder's chat_template.jinja (where transformers 4.43+ saves it); bos_token and
  // eos_token (strings or {"content": ...}). Throws ember::Error naming the file when it is
  // missing or there is no template. A GGUF file instead gives its metadata's
  // tokenizer.chat_template, and the tokens that tokenizer.ggml.bos/eos_token_id name.
  static ChatFormat from_folder(const std::filesystem::path& folder);
};

class ChatSession {
 public:
  // The cache spans the model's context. A conversation that outgrows it must be reset, unless
  // config.context_keep >= 0: then a reply that fills the cache shifts it (generate_cached),
  // and a prompt that no longer fits drops the oldest turns (the system message stays).
  ChatSession(models::CausalLM& model, const tokenizers::Tokenizer& tokenizer,
              const ChatFormat& format, GenerationConfig config, std::string system_prompt = "");

  // Adds the user's turn, generates (streaming) the assistant's reply and adds it. On failure
  // (a template error, a full context) the conversation is left as it was.
  Generation reply(const std::string& user_text, const TextCallback& on_text = nullptr);
  void reset();

  // Saves the conversation and its KV cache to `path` (kv_session.hpp's format, the messages as
  // its note), for load() in a later process with the same model.
  void save(const std::filesystem::path& path, std::string_view model_identity) const;
  // Restores what save() wrote. Throws ember::Error naming the path and what is wrong (the KV
  // session's checks, a note that is not a conversation); the conversation then starts over.
  void load(const std::filesystem::path& path, std::string_view model_identity);
  // The conversation so far (role/content objects, the system message first when there is one).
  const nlohmann::ordered_json& messages() const { return messages_; }

  // Of the last reply's prompt: its tokens, and how many of them came from the cache.
  int64_t prompt_tokens() const { return prompt_tokens_; }
  int64_t reused_tokens() const { return cached_.reused; }

 private:
  models::CausalLM& model_;
  const tokenizers::Tokenizer& tokenizer_;
  ChatTemplate template_;
  ChatFormat format_;
  GenerationConfig config_;
  std::string system_prompt_;
  nlohmann::ordered_json messages_;
  PromptCache cached_;
  int64_t prompt_tokens_ = 0;
};

}  // namespace ember::generation
