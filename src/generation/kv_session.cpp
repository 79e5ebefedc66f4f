#include "ember/generation/kv_session.hpp"

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "ember/base/error.hpp"
#include "ember/core/atomic_file.hpp"
#include "ember/core/convert.hpp"
#include "ember/core/ops.hpp"

namespace ember::generation {
namespace {

constexpr char kMagic[8] = {'E', 'M', 'B', 'E', 'R', 'K', 'V', '\0'};

struct CacheShape {
  int64_t layers = 0, kv_heads = 0, head_dim = 0, capacity = 0;
  DType dtype = DType::F32;
};

// The element type's code in version 3 files: GGML's type numbers.
constexpr uint32_t kStoredF32 = 0, kStoredF16 = 1;

CacheShape shape_of(const models::KvCache& cache) {
  if (cache.layers.empty() || cache.layers[0].keys.dim(0) != 1) {
    throw Error("KV session: the cache must hold exactly one sequence");
  }
  const Tensor& k = cache.layers[0].keys;
  return {static_cast<int64_t>(cache.layers.size()), k.dim(2), k.dim(3), k.dim(1), k.dtype()};
}

// Cursor over the file's bytes: every read is checked against what is left.
struct Reader {
  std::span<const uint8_t> bytes;
  size_t at = 0;

  void take(void* out, size_t n, const char* what) {
    if (n > bytes.size() - at) {
      throw Error(std::string("KV session: the file ends inside ") + what + " (offset " +
                  std::to_string(at) + ")");
    }
    std::memcpy(out, bytes.data() + at, n);
    at += n;
  }
  template <typename T>
  T value(const char* what) {
    T v{};
    take(&v, sizeof v, what);
    return v;
  }
};

template <typename T>
void put(std::string& out, const T& v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

void check_field(const char* what, uint64_t got, int64_t expected) {
  if (got != static_cast<uint64_t>(expected)) {
    throw Error(std::string("KV session: ") + what + " is " + std::to_string(got) +
                ", the model has " + std::to_string(expected));
  }
}

std::string restore(std::span<const uint8_t> bytes, std::string_view identity, int64_t vocab,
                    PromptCache& cached) {
  const CacheShape shape = shape_of(cached.cache);
  Reader in{bytes};
  char magic[sizeof kMagic];
  in.take(magic, sizeof magic, "the magic");
  if (std::memcmp(magic, kMagic, sizeof magic) != 0) {
    throw Error("KV session: bad magic (not an Ember KV session file)");
  }
  const auto version = in.value<uint32_t>("the version");
  if (version < 1 || version > kKvSessionVersion) {
    throw Error("KV session: version " + std::to_string(version) + " is not supported (1 to " +
                std::to_string(kKvSessionVersion) + ")");
  }
  const auto id_size = in.value<uint32_t>("the model identity's length");
  if (id_size > kMaxModelIdentityBytes) {
    throw Error("KV session: a model identity of " + std::to_string(id_size) +
                " bytes is longer than " + std::to_string(kMaxModelIdentityBytes));
  }
  std::string id(id_size, '\0');
  in.take(id.data(), id.size(), "the model identity");
  if (id != identity) {
    throw Error("KV session: saved for model " + quote_name(id) + ", not " + quote_name(identity));
  }
  std::string note;
  if (version >= 2) {
    const auto note_size = in.value<uint32_t>("the note's length");
    if (note_size > kMaxKvSessionNoteBytes) {
      throw Error("KV session: a note of " + std::to_string(note_size) + " bytes is longer than " +
                  std::to_string(kMaxKvSessionNoteBytes));
    }
    note.resize(note_size);
    in.take(note.data(), note.size(), "the note");
  }
  check_field("the layer count", in.value<uint64_t>("the layer count"), shape.layers);
  check_field("kv_heads", in.value<uint64_t>("kv_heads"), shape.kv_heads);
  check_field("head_dim", in.value<uint64_t>("head_dim"), shape.head_dim);
  const auto n = in.value<uint64_t>("the token count");
  if (n > static_cast<uint64_t>(shape.capacity)) {
    throw Error("KV session: " + std::to_string(n) + " tokens exceed the cache's capacity of " +
                std::to_string(shape.capacity));
  }
  // Versions 1 and 2 stored F32; a file's dtype may differ from the cache's (an F32 session
  // restored into an F16 cache is rounded, as the cache would have rounded it).
  DType stored = DType::F32;
  if (version >= 3) {
    const auto code = in.value<uint32_t>("the element type");
    if (code != kStoredF32 && code != kStoredF16) {
      throw Error("KV session: element type " + std::to_string(code) +
                  " is not supported (0 = F32, 1 = F16)");
    }
    stored = code == kStoredF16 ? DType::F16 : DType::F32;
  }
  // n <= capacity and the shape matches a cache that exists, so these sizes do not overflow.
  const auto tokens = static_cast<int64_t>(n);
  const auto row_bytes =
      static_cast<size_t>(tokens * shape.kv_heads * shape.head_dim) * dtype_size(stored);
  const size_t expected = in.at + static_cast<size_t>(tokens) * sizeof(int64_t) +
                          static_cast<size_t>(shape.layers) * 2 * row_bytes;
  if (bytes.size() != expected) {
    throw Error("KV session: the file has " + std::to_string(bytes.size()) + " bytes, " +
                std::to_string(tokens) + " tokens need " + std::to_string(expected));
  }
  cached.tokens.resize(static_cast<size_t>(tokens));
  for (int64_t& t : cached.tokens) {
    t = in.value<int64_t>("the token ids");
    if (t < 0 || t >= vocab) {
      throw Error("KV session: token id " + std::to_string(t) +
                  " is outside the model's vocabulary of " + std::to_string(vocab));
    }
  }
  for (nn::LayerCache& layer : cached.cache.layers) {
    for (Tensor* t : {&layer.keys, &layer.values}) {
      Tensor rows = t->narrow(1, 0, tokens);  // contiguous: the first n rows are a prefix
      if (stored == t->dtype()) {
        in.take(rows.mutable_data(), row_bytes, "the keys and values");
        continue;
      }
      Tensor file = Tensor::empty(stored, rows.shape());
      in.take(file.mutable_data(), row_bytes, "the keys and values");
      ops::copy_into(rows, to_f32(file));
    }
  }
  cached.cache.length = tokens;
  return note;
}

}  // namespace

std::string model_identity(const std::filesystem::path& model) {
  std::error_code ec;
  std::string id = model.filename().empty() ? model.parent_path().filename().string()
                                            : model.filename().string();
  if (std::filesystem::is_regular_file(model, ec)) {
    return id + " " + std::to_string(std::filesystem::file_size(model));
  }
  // A folder: the sizes of its weight and config files, in name order.
  std::vector<std::pair<std::string, uintmax_t>> files;
  for (const auto& entry : std::filesystem::directory_iterator(model)) {
    const std::string name = entry.path().filename().string();
    const bool relevant = name == "config.json" || name.ends_with(".safetensors") ||
                          name.ends_with(".bin") || name.ends_with(".gguf");
    if (relevant && entry.is_regular_file()) files.emplace_back(name, entry.file_size());
  }
  std::sort(files.begin(), files.end());
  for (const auto& [name, size] : files) id += " " + name + ":" + std::to_string(size);
  return id.substr(0, kMaxModelIdentityBytes);
}

std::string serialize_kv_session(std::string_view identity, const PromptCache& cached,
                                 std::string_view note) {
  const CacheShape shape = shape_of(cached.cache);
  const int64_t n = cached.cache.length;
  if (static_cast<int64_t>(cached.tokens.size()) != n) {
    throw Error("KV session: the cache holds " + std::to_string(n) + " tokens but " +
                std::to_string(cached.tokens.size()) + " are listed");
  }
  if (identity.size() > kMaxModelIdentityBytes) throw Error("KV session: model identity too long");
  if (note.size() > kMaxKvSessionNoteBytes) throw Error("KV session: note too long");
  std::string out(kMagic, sizeof kMagic);
  put(out, kKvSessionVersion);
  put(out, static_cast<uint32_t>(identity.size()));
  out += identity;
  put(out, static_cast<uint32_t>(note.size()));
  out += note;
  for (const int64_t v : {shape.layers, shape.kv_heads, shape.head_dim, n})
    put(out, static_cast<uint64_t>(v));
  if (shape.dtype != DType::F32 && shape.dtype != DType::F16) {
    throw Error("KV session: cannot save a cache of " + std::string(dtype_name(shape.dtype)));
  }
  put(out, shape.dtype == DType::F16 ? kStoredF16 : kStoredF32);
  for (const int64_t t : cached.tokens) put(out, t);
  const auto row_bytes =
      static_cast<size_t>(n * shape.kv_heads * shape.head_dim) * dtype_size(shape.dtype);
  for (const nn::LayerCache& layer : cached.cache.layers) {
    for (const Tensor* t : {&layer.keys, &layer.values})
      out.append(reinterpret_cast<const char*>(t->data()), row_bytes);
  }
  return out;
}

std::string restore_kv_session(std::span<const uint8_t> bytes, std::string_view identity,
                               int64_t vocab, PromptCache& cached) {
  cached.clear();
  try {
    return restore(bytes, identity, vocab, cached);
  } catch (...) {
    cached.clear();
    throw;
  }
}

void save_kv_session(const std::filesystem::path& path, std::string_view identity,
                     const PromptCache& cached, std::string_view note) {
  write_file_atomically(path, serialize_kv_session(identity, cached, note));
}

std::string load_kv_session(const std::filesystem::path& path, std::string_view identity,
                            int64_t vocab, PromptCache& cached) {
  const CacheShape shape = shape_of(cached.cache);
  // The largest file this cache can take: bounds what is read before parsing.
  // (F32, the widest element type a file may hold.)
  const uint64_t limit =
      sizeof kMagic + 16 + kMaxModelIdentityBytes + kMaxKvSessionNoteBytes + 32 +
      static_cast<uint64_t>(shape.capacity) *
          (sizeof(int64_t) +
           static_cast<uint64_t>(shape.layers * 2 * shape.kv_heads * shape.head_dim) *
               sizeof(float));
  const std::string bytes = read_regular_file(path, limit);
  try {
    return restore_kv_session({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()},
                              identity, vocab, cached);
  } catch (const Error& e) {
    throw Error(path.string() + ": " + e.what());
  }
}

}  // namespace ember::generation
