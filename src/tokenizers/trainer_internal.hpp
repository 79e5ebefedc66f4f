#pragma once
// Shared between the trainers (trainer_*.cpp) and Tokenizer::train (train.cpp).
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "ember/tokenizers/trainer.hpp"

namespace ember::tokenizers {

// Each returns the trained model section of tokenizer.json; `base` is the template's model
// section (its untrained options are kept).
std::string train_bpe_json(const BpeTrainer& t, std::vector<WordCount> words,
                           const nlohmann::ordered_json& base, const TrainOptions& options);
std::string train_wordpiece_json(const WordPieceTrainer& t, std::vector<WordCount> words,
                                 const nlohmann::ordered_json& base, const TrainOptions& options);
std::string train_wordlevel_json(const WordLevelTrainer& t, std::vector<WordCount> words,
                                 const nlohmann::ordered_json& base);
std::string train_unigram_json(const UnigramTrainer& t, std::vector<WordCount> words,
                               const TrainOptions& options);

}  // namespace ember::tokenizers
