// SentencePiece ("llama") vocabularies from GGUF metadata, tokenized as llama.cpp does: every
// string of tests/fixtures/models/gguf_spm (tools/models/make_gguf_spm_fixture.py: a trained
// SentencePiece BPE vocabulary with byte fallback and a user-defined piece, ids from
// llama-cpp-python's vocab-only tokenize with add_bos and special) gets the same ids.
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "ember/base/error.hpp"
#include "ember/formats/gguf.hpp"
#include "ember/generation/generate.hpp"
#include "ember/models/gguf_tokenizer.hpp"
#include "model_fixtures.hpp"

namespace ember {
namespace {

const std::filesystem::path kDir = test::kModelFixtures / "gguf_spm";

TEST(GgufSentencePiece, SameIdsAsLlamaCpp) {
  const tokenizers::Tokenizer tok = generation::load_tokenizer(kDir / "vocab.gguf");
  std::ifstream in(kDir / "expected.jsonl");
  std::string line;
  size_t checked = 0, with_bytes = 0;
  while (std::getline(in, line)) {
    const nlohmann::json c = nlohmann::json::parse(line);
    const std::string text = c.at("input");
    const std::vector<uint32_t> expected = c.at("ids").get<std::vector<uint32_t>>();
    EXPECT_EQ(tok.encode_ids(text, true), expected) << text;
    // Byte pieces <0x00>..<0xFF> follow the 4 specials: ids 4..259.
    for (uint32_t id : expected) with_bytes += id >= 4 && id < 260 ? 1 : 0;
    ++checked;
  }
  EXPECT_GE(checked, 250u);
  EXPECT_GT(with_bytes, 100u);  // the fixture does exercise byte fallback
}

TEST(GgufSentencePiece, VocabularyMetadata) {
  const GgufFile file = GgufFile::open(kDir / "vocab.gguf");
  const tokenizers::SentencePieceVocab v = models::gguf_sentencepiece_vocab(file);
  EXPECT_EQ(v.pieces.size(), v.scores.size());
  EXPECT_EQ(v.pieces.at(4), "<0x00>");
  EXPECT_EQ(v.types.at(4), 6);
  EXPECT_EQ(v.bos_id, std::optional<uint32_t>(1));
  EXPECT_FALSE(v.eos_id.has_value());
  EXPECT_TRUE(v.add_space_prefix);
  EXPECT_THROW(models::gguf_tokenizer_json(file), Error);  // the gpt2 path names this one
}

TEST(GgufSentencePiece, RefusesBadVocabularies) {
  tokenizers::SentencePieceVocab v;
  v.pieces = {"<unk>", "a", "b"};
  v.scores = {0, -1, -2};
  v.types = {2, 1, 1};
  EXPECT_NO_THROW(tokenizers::Tokenizer::from_sentencepiece_vocab(v));
  auto bad = v;
  bad.scores.pop_back();
  EXPECT_THROW(tokenizers::Tokenizer::from_sentencepiece_vocab(bad), Error);
  bad = v;
  bad.types[1] = 9;
  EXPECT_THROW(tokenizers::Tokenizer::from_sentencepiece_vocab(bad), Error);
  bad = v;
  bad.pieces[2] = "a";
  EXPECT_THROW(tokenizers::Tokenizer::from_sentencepiece_vocab(bad), Error);
  bad = v;
  bad.bos_id = 3;
  EXPECT_THROW(tokenizers::Tokenizer::from_sentencepiece_vocab(bad), Error);
  bad = v;
  bad.unk_id = 7;
  EXPECT_THROW(tokenizers::Tokenizer::from_sentencepiece_vocab(bad), Error);
}

}  // namespace
}  // namespace ember
