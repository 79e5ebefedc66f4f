// Fuzzes the legacy vocabulary loaders: BERT vocab.txt, GPT-2 vocab.json + merges.txt,
// SentencePiece .model protobufs and the sentencepiece folders of translation models (M2M100's
// sentencepiece.bpe.model + vocab.json, mBART-cc25's model alone). The first byte picks the
// format; the rest is the file (for GPT-2, vocab.json and merges.txt separated by
// kMergesSeparator; for M2M100, the model and vocab.json separated by kVocabSeparator). Any
// input must load or throw TokenizerError (ember::Error for the folders), never crash; a loaded
// tokenizer also encodes and decodes a fixed text.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "ember/base/error.hpp"
#include "ember/generation/seq2seq_tokenizer.hpp"
#include "ember/tokenizers/tokenizer.hpp"

namespace {

constexpr std::string_view kMergesSeparator = "\n#merges#\n";
constexpr std::string_view kVocabSeparator = "\n#vocab#\n";
constexpr std::string_view kText = "Hello world, héllo 世界 [CLS] 123 ▁x";

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

// With vocab.json an M2M100 folder, without one mBART-cc25's.
void load_seq2seq_folder(std::string_view file) {
  const size_t cut = file.find(kVocabSeparator);
  const bool m2m100 = cut != std::string_view::npos;
  write_scratch("sentencepiece.bpe.model", file.substr(0, cut));
  if (m2m100) {
    write_scratch("vocab.json", file.substr(cut + kVocabSeparator.size()));
  } else {
    std::filesystem::remove(scratch_dir() + "/vocab.json");
  }
  write_scratch("tokenizer_config.json", m2m100 ? R"({"tokenizer_class": "M2M100Tokenizer"})"
                                                : R"({"tokenizer_class": "MBartTokenizer"})");
  try {
    const auto tok = ember::generation::Seq2SeqTokenizer::load(scratch_dir());
    (void)tok.decode(tok.encode(kText));
  } catch (const ember::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace tk = ember::tokenizers;
  if (size == 0) return 0;
  const std::string_view file(reinterpret_cast<const char*>(data) + 1, size - 1);
  const int format = data[0] % 4;
  if (format == 3) {
    load_seq2seq_folder(file);
    return 0;
  }
  try {
    tk::Tokenizer tok = [&] {
      switch (format) {
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
    auto e = tok.encode(kText, true);
    (void)tok.decode(e.ids, false);
    (void)tok.decode(e.ids, true);
  } catch (const tk::TokenizerError&) {
  }
  return 0;
}
