// Fuzzes chat templates: any text must parse and render, or throw ember::Error, never crash,
// hang or grow without bound (the limits are small here so each input stays fast).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "ember/base/error.hpp"
#include "ember/generation/chat_template.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace gen = ember::generation;
  gen::ChatTemplateLimits limits;
  limits.max_output_bytes = 1 << 16;
  limits.max_steps = 1 << 14;
  limits.max_depth = 32;
  try {
    const gen::ChatTemplate tmpl(std::string_view(reinterpret_cast<const char*>(data), size),
                                 limits);
    gen::ChatRequest request;
    request.messages = nlohmann::ordered_json::parse(
        R"([{"role": "system", "content": " Be brief. "}, {"role": "user", "content": "héllo 🌍"},
            {"role": "assistant", "content": "hi", "tool_calls": [{"function": {"name": "f",
            "arguments": {"x": [1, 2.5, null]}}}]}, {"role": "user", "content": "bye"}])");
    request.bos_token = "<s>";
    request.eos_token = "</s>";
    request.tools =
        nlohmann::ordered_json::parse(R"([{"type": "function", "function": {"name": "f"}}])");
    (void)gen::apply_chat_template(tmpl, request);
  } catch (const ember::Error&) {
  }
  return 0;
}
