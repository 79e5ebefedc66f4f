// `ember chat`: a multi-turn conversation with a causal LM, one user turn per stdin line,
// replies streamed to stdout. `/reset` starts over, `/save FILE` and `/load FILE` keep the
// conversation and its KV cache in a file (generation/kv_session.hpp); end of input ends the
// chat.
#include <unistd.h>

#include <iostream>
#include <string>

#include "activations_option.hpp"
#include "command.hpp"
#include "ember/generation/chat.hpp"
#include "ember/generation/kv_session.hpp"
#include "ember/hub/hub.hpp"
#include "input.hpp"
#include "output.hpp"
#include "sampling_options.hpp"

namespace {

namespace gen = ember::generation;

struct ChatOptions {
  std::string model, system, activations = "f32";
  ember::cli::SamplingOptions sampling;
};

void run_chat(const ChatOptions& opt) {
  const std::filesystem::path folder =
      ember::hub::resolve_model(opt.model, ember::hub::HubOptions::from_environment());
  const auto format = gen::ChatFormat::from_folder(folder);
  ember::cli::apply_activations_option(opt.activations);
  const auto model = ember::models::load_causal_lm(folder);
  const auto tokenizer = gen::load_tokenizer(folder);
  gen::GenerationConfig config = gen::GenerationConfig::from_folder(folder);
  ember::cli::apply_sampling_options(opt.sampling, config);
  gen::ChatSession session(*model, tokenizer, format, config, opt.system);
  const std::string identity = gen::model_identity(folder);
  // Prompts go to stderr and only for a person at a terminal, so piped output is just replies.
  const bool interactive = ::isatty(STDIN_FILENO) != 0;
  const auto ask = [&] {
    if (interactive) std::cerr << "> " << std::flush;
  };
  ask();
  std::string line;
  while (ember::cli::next_line(line)) {
    const bool save = line.starts_with("/save");
    const bool load = line.starts_with("/load");
    if (line == "/reset") {
      session.reset();
      if (interactive) std::cerr << "(new conversation)\n";
    } else if ((save || load) && (line.size() == 5 || line[5] == ' ')) {
      // A failed /save or /load is reported and the chat goes on (after a failed /load, from a
      // new conversation).
      const std::string file = line.size() > 6 ? line.substr(6) : "";
      try {
        if (file.empty()) throw ember::Error(line.substr(0, 5) + " needs a file name");
        if (save) {
          session.save(file, identity);
        } else {
          session.load(file, identity);
        }
        std::cerr << (save ? "(saved " : "(loaded ") << session.messages().size()
                  << (save ? " messages to " : " messages from ") << file << ")\n";
      } catch (const ember::Error& e) {
        std::cerr << "error: " << e.what() << (load ? " (new conversation)" : "") << "\n";
      }
    } else {
      session.reply(line, [](size_t, std::string_view piece) {
        ember::cli::out().text(piece);
        ember::cli::out().flush();
      });
      ember::cli::out().line("");
      ember::cli::out().flush();
    }
    ask();
  }
}

const ember::cli::CommandRegistrar chat_registrar{
    {"chat", [](CLI::App& app) {
       auto opt = std::make_shared<ChatOptions>();
       CLI::App* cmd = app.add_subcommand(
           "chat",
           "Chat with a model through its chat template: one user turn per stdin line; /reset, "
           "/save FILE and /load FILE (the conversation and its KV cache)");
       cmd->add_option("--model", opt->model,
                       "model folder, Hugging Face model id, or built-in name")
           ->required();
       ember::cli::add_activations_option(cmd, opt->activations);
       cmd->add_option("--system", opt->system, "a system message that starts the conversation");
       ember::cli::add_sampling_options(cmd, opt->sampling);
       cmd->callback([opt] { run_chat(*opt); });
     }}};

}  // namespace
