// `ember download REPO_ID [--revision R] [FILE...]`: brings a Hugging Face model repo (the files a
// model needs, as `--model org/name` would) or the named files of it into the standard hub cache
// and prints the local path: the snapshot folder, or one line per file.
//
// The environment is huggingface_hub's: HF_ENDPOINT, HF_HUB_CACHE / HF_HOME, HF_HUB_OFFLINE,
// HF_TOKEN (see include/ember/hub/hub.hpp).
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "command.hpp"
#include "ember/hub/hub.hpp"

namespace ember::cli {
namespace {

void setup_download(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "download",
      "Download a Hugging Face model repo (or some of its files) into the hub cache and print the "
      "local path");
  auto repo_id = std::make_shared<std::string>();
  auto revision = std::make_shared<std::string>("main");
  auto files = std::make_shared<std::vector<std::string>>();
  cmd->add_option("repo_id", *repo_id, "model repo, e.g. sentence-transformers/all-MiniLM-L6-v2")
      ->required();
  cmd->add_option("files", *files,
                  "files of the repo to fetch (default: the configs, tokenizer and weights a "
                  "model needs)");
  cmd->add_option("--revision", *revision, "branch, tag or commit hash")->capture_default_str();
  cmd->callback([repo_id, revision, files] {
    hub::HubOptions options = hub::HubOptions::from_environment();
    options.revision = *revision;
    // Every path is known before anything is printed: a failure prints nothing on stdout.
    std::string text;
    if (files->empty()) {
      text = hub::hub_model(*repo_id, options).string() + "\n";
    } else {
      for (const std::string& file : *files) {
        text += hub::hub_file(*repo_id, file, options).string() + "\n";
      }
    }
    std::cout << text << std::flush;
  });
}

const CommandRegistrar registrar({"download", setup_download});

}  // namespace
}  // namespace ember::cli
