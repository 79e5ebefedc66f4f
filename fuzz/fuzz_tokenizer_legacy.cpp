// Fuzzes the legacy vocabulary loaders: BERT vocab.txt, GPT-2 vocab.json + merges.txt and
// SentencePiece .model protobufs. The first byte picks the format; the rest is the file (for
// GPT-2, vocab.json and merges.txt separated by kMergesSeparator). Any input must load or throw
// TokenizerError, never crash; a loaded tokenizer also encodes and decodes a fixed text.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "ember/tokenizers/tokenizer.hpp"

namespace {

constexpr std::string_view kMergesSeparator = "\n#merges#\n";

// The loaders read paths: one scratch directory per fuzzing process, removed at exit. Held by a
// never-destroyed pointer so that the exit handler cannot outlive it.
const std::string& scratch_dir() {
  static const std::string* dir = [] {
    std::string pattern = "/tmp/ember-fuzz-legacy-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) std::abort();
    return new std::string(pattern);
  }();
  static const bool cleanup_registered =
      std::atexit([] { std::filesystem::remove_all(scratch_dir()); }) == 0;
  (void)cleanup_registered;
  return *dir;
}

std::string write_scratch(const std::string& name, std::string_view bytes) {
  const std::string path = scratch_dir() + "/" + name;
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace tk = ember::tokenizers;
  if (size == 0) return 0;
  const std::string_view file(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    tk::Tokenizer tok = [&] {
      switch (data[0] % 3) {
        case 0:
          return tk::Tokenizer::from_bert_vocab(write_scratch("vocab.txt", file));
        case 1: {
          const size_t cut = file.find(kMergesSeparator);
          const std::string_view vocab = file.substr(0, cut);
          const std::string_view merges =
              cut == std::string_view::npos ? "" : file.substr(cut + kMergesSeparator.size());
          return tk::Tokenizer::from_gpt2_files(write_scratch("vocab.json", vocab),
                                                write_scratch("merges.txt", merges));
        }
        default:
          return tk::Tokenizer::from_sentencepiece(write_scratch("spm.model", file));
      }
    }();
    auto e = tok.encode("Hello world, héllo 世界 [CLS] 123 ▁x", true);
    (void)tok.decode(e.ids, false);
    (void)tok.decode(e.ids, true);
  } catch (const tk::TokenizerError&) {
  }
  return 0;
}
