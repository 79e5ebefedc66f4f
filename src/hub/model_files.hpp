#pragma once
// Internal: which files of a Hub repo make a model folder, and the bounded JSON reading that
// choosing them needs (the repo listing, weight indexes, modules.json).
#include <filesystem>
#include <functional>
#include <set>
#include <string>
#include <string_view>

namespace ember::hub::detail {

struct RepoListing {
  std::string commit;           // "sha"
  std::set<std::string> files;  // "siblings[].rfilename", each validated
};

// The body of GET /api/models/{repo}/revision/{revision}. Any sibling name that could leave the
// snapshot folder makes the whole listing an error.
RepoListing parse_repo_listing(std::string_view json_text, std::string_view what);

// Calls `fetch(filename)` (which returns the local path) for every file of the listing that the
// model needs, configs first: the root folder and each sentence-transformers module folder
// named by modules.json get the same rule (see hub_model in hub.hpp).
void fetch_model_files(const RepoListing& listing,
                       const std::function<std::filesystem::path(const std::string&)>& fetch);

}  // namespace ember::hub::detail
