#include "model_files.hpp"

#include <nlohmann/json.hpp>

#include "cache.hpp"
#include "ember/base/error.hpp"
#include "names.hpp"

namespace ember::hub::detail {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr int kMaxJsonDepth = 64;
constexpr size_t kMaxIndexBytes = 64u << 20;
constexpr size_t kMaxModulesBytes = 1u << 20;

// Configs and tokenizer files, fetched from every model folder that has them.
constexpr const char* kModelFolderFiles[] = {
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
    "spiece.model",
    "sentencepiece.bpe.model",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
};

// nlohmann's parser keeps its own stack, so depth is bounded here only to refuse absurd input.
json parse_json(std::string_view text, std::string_view what) {
  try {
    return json::parse(text, [&](int depth, json::parse_event_t, json&) {
      if (depth > kMaxJsonDepth) {
        throw Error("hub: " + std::string(what) + ": JSON nested deeper than " +
                    std::to_string(kMaxJsonDepth) + " levels");
      }
      return true;
    });
  } catch (const json::exception& e) {
    throw Error("hub: " + std::string(what) + ": invalid JSON: " + e.what());
  }
}

// The distinct file names a sharded checkpoint's index maps tensors to.
std::set<std::string> index_shards(const fs::path& index, std::string_view name) {
  const std::string what = "weight index " + quote_name(name);
  const json root = parse_json(read_small_file(index, kMaxIndexBytes, what), what);
  const auto map = root.is_object() ? root.find("weight_map") : root.end();
  if (map == root.end() || !map->is_object()) {
    throw Error("hub: " + what + ": 'weight_map' is missing or not an object");
  }
  std::set<std::string> shards;
  for (const auto& [tensor, file] : map->items()) {
    if (!file.is_string()) {
      throw Error("hub: " + what + ": 'weight_map' entry " + quote_name(tensor) +
                  " is not a string");
    }
    shards.insert(file.get<std::string>());
  }
  return shards;
}

// The non-root module folders of modules.json ("path" of each entry, "" meaning the root).
std::vector<std::string> module_folders(const fs::path& modules) {
  const std::string what = "'modules.json'";
  const json root = parse_json(read_small_file(modules, kMaxModulesBytes, what), what);
  if (!root.is_array()) throw Error("hub: " + what + ": not a JSON array");
  std::vector<std::string> folders;
  for (const json& module : root) {
    const auto path = module.is_object() ? module.find("path") : module.end();
    if (path == module.end() || !path->is_string()) {
      throw Error("hub: " + what + ": an entry has no string 'path'");
    }
    std::string folder = path->get<std::string>();
    while (folder.ends_with('/')) folder.pop_back();
    if (!folder.empty()) folders.push_back(std::move(folder));
  }
  return folders;
}

bool in_folder(std::string_view file, std::string_view prefix) {
  return file.starts_with(prefix) && file.find('/', prefix.size()) == std::string_view::npos;
}

// Weights of one folder: the files an index names, else the single-file checkpoint, else every
// file with the extension; safetensors first, PyTorch .bin only without any safetensors.
void fetch_weights(const RepoListing& listing, const std::string& prefix,
                   const std::function<fs::path(const std::string&)>& fetch) {
  struct Format {
    const char* index;
    const char* single;
    const char* extension;
  };
  for (const Format& format :
       {Format{"model.safetensors.index.json", "model.safetensors", ".safetensors"},
        Format{"pytorch_model.bin.index.json", "pytorch_model.bin", ".bin"}}) {
    const std::string index = prefix + format.index;
    if (listing.files.contains(index)) {
      const fs::path path = fetch(index);
      for (const std::string& shard : index_shards(path, index)) {
        check_filename(shard, quote_name(index));
        if (!listing.files.contains(prefix + shard)) {
          throw Error("hub: " + quote_name(index) + " names " + quote_name(shard) +
                      ", which the repo does not have");
        }
        fetch(prefix + shard);
      }
      return;
    }
    if (listing.files.contains(prefix + format.single)) {
      fetch(prefix + format.single);
      return;
    }
    bool any = false;
    for (const std::string& file : listing.files) {
      if (in_folder(file, prefix) && file.ends_with(format.extension)) {
        fetch(file);
        any = true;
      }
    }
    if (any) return;
  }
}

void fetch_folder(const RepoListing& listing, const std::string& prefix,
                  const std::function<fs::path(const std::string&)>& fetch) {
  for (const char* name : kModelFolderFiles) {
    if (listing.files.contains(prefix + name)) fetch(prefix + name);
  }
  fetch_weights(listing, prefix, fetch);
}

}  // namespace

RepoListing parse_repo_listing(std::string_view json_text, std::string_view what) {
  const std::string context = "listing of " + std::string(what);
  const json root = parse_json(json_text, context);
  RepoListing listing;
  const auto sha = root.is_object() ? root.find("sha") : root.end();
  if (sha == root.end() || !sha->is_string() || !is_commit_hash(sha->get<std::string>())) {
    throw Error("hub: " + context + ": 'sha' is missing or not a commit hash");
  }
  listing.commit = sha->get<std::string>();
  const auto siblings = root.find("siblings");
  if (siblings == root.end() || !siblings->is_array()) {
    throw Error("hub: " + context + ": 'siblings' is missing or not an array");
  }
  for (const json& sibling : *siblings) {
    const auto name = sibling.is_object() ? sibling.find("rfilename") : sibling.end();
    if (name == sibling.end() || !name->is_string()) {
      throw Error("hub: " + context + ": a sibling has no string 'rfilename'");
    }
    check_filename(name->get<std::string>(), context);
    listing.files.insert(name->get<std::string>());
  }
  return listing;
}

void fetch_model_files(const RepoListing& listing,
                       const std::function<fs::path(const std::string&)>& fetch) {
  fetch_folder(listing, "", fetch);
  if (!listing.files.contains("modules.json")) return;
  for (const std::string& folder : module_folders(fetch("modules.json"))) {
    check_filename(folder, "'modules.json'");
    fetch_folder(listing, folder + "/", fetch);
  }
}

}  // namespace ember::hub::detail
