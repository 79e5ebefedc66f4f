// Tokenizes a text file with a Hugging Face tokenizer.json: one line of token ids per input line.
//   tokenize_file tokenizer.json input.txt
#include <fstream>
#include <iostream>
#include <string>

#include "ember/tokenizers/tokenizer.hpp"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: tokenize_file TOKENIZER_JSON TEXT_FILE\n";
    return 2;
  }
  try {
    const auto tokenizer = ember::tokenizers::Tokenizer::from_file(argv[1]);
    std::ifstream in(argv[2]);
    if (!in) throw std::runtime_error(std::string("cannot open ") + argv[2]);
    std::string line;
    while (std::getline(in, line)) {
      const auto ids = tokenizer.encode_ids(line);
      for (size_t i = 0; i < ids.size(); ++i) std::cout << (i ? " " : "") << ids[i];
      std::cout << '\n';
    }
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << '\n';
    return 1;
  }
  return std::cout.flush() ? 0 : 1;
}
