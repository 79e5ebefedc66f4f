// `ember inspect PATH [--json]`: what a safetensors checkpoint or a GGUF file holds.
//
// PATH is a .safetensors file, a model.safetensors.index.json, a model directory holding one
// of model.safetensors.index.json / model.safetensors, or a GGUF file (by its .gguf name or
// magic). For GGUF the metadata values keep their types (arrays as JSON arrays; the text view
// cuts long ones) and data_offsets count from the data section. --json prints
//   {"metadata": {...}, "tensors": {"NAME": {"dtype": "F32", "shape": [..],
//                                            "data_offsets": [b, e]}}}
// with tensors in file order. For a single file "metadata" is its __metadata__ ({} if none); for
// a sharded checkpoint it is the index's "metadata" object and each tensor also has "file": the
// shard file (relative to the index) whose data buffer the offsets point into.
#include <cstdint>
#include <iomanip>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "command.hpp"
#include "ember/formats/gguf.hpp"
#include "ember/formats/safetensors.hpp"
#include "output.hpp"

namespace ember::cli {
namespace {

// Control bytes in names would break the one-line-per-tensor layout.
std::string printable(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    } else {
      out.push_back(ch);
    }
  }
  return out;
}

std::string human_bytes(uint64_t bytes) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int unit = 0;
  while (v >= 1024 && unit < 4) {
    v /= 1024;
    ++unit;
  }
  std::ostringstream out;
  if (unit == 0) {
    out << bytes << " B";
  } else {
    out << std::fixed << std::setprecision(1) << v << ' ' << kUnits[unit];
  }
  return out.str();
}

struct TensorRow {
  std::string_view name;
  DType dtype;
  const Shape& shape;
  uint64_t bytes;
  std::string file;
};

// The tensor table and the totals line shared by every format.
void tensor_table(std::ostringstream& out, const std::vector<TensorRow>& tensors, bool with_file) {
  struct Row {
    std::string name, dtype, shape, bytes, file;
  };
  std::vector<Row> rows;
  Row header{"NAME", "DTYPE", "SHAPE", "BYTES", "FILE"};
  size_t widths[4] = {header.name.size(), header.dtype.size(), header.shape.size(),
                      header.bytes.size()};
  uint64_t parameters = 0;
  uint64_t bytes = 0;
  for (const TensorRow& t : tensors) {
    parameters += static_cast<uint64_t>(shape_numel(t.shape));
    bytes += t.bytes;
    Row r{printable(t.name), std::string(dtype_name(t.dtype)), shape_to_string(t.shape),
          std::to_string(t.bytes), t.file};
    widths[0] = std::max(widths[0], r.name.size());
    widths[1] = std::max(widths[1], r.dtype.size());
    widths[2] = std::max(widths[2], r.shape.size());
    widths[3] = std::max(widths[3], r.bytes.size());
    rows.push_back(std::move(r));
  }
  out << "tensors: " << rows.size() << "\n";
  if (!rows.empty()) {
    const auto print = [&](const Row& r) {
      out << "  " << std::left << std::setw(static_cast<int>(widths[0])) << r.name << "  "
          << std::setw(static_cast<int>(widths[1])) << r.dtype << "  "
          << std::setw(static_cast<int>(widths[2])) << r.shape << "  " << std::right
          << std::setw(static_cast<int>(widths[3])) << r.bytes;
      if (with_file) out << "  " << r.file;
      out << "\n";
    };
    print(header);
    for (const Row& r : rows) print(r);
  }
  out << "total: " << parameters << " parameters, " << bytes << " bytes (" << human_bytes(bytes)
      << ")\n";
}

// One tensor per line, in the spacing of the format's own documentation:
//   "NAME": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}
std::string json_inspect(const ShardedSafeTensors& st) {
  nlohmann::ordered_json metadata = nlohmann::ordered_json::object();
  if (st.is_sharded()) {
    metadata = nlohmann::ordered_json::parse(st.index_metadata_json());
  } else {
    for (const auto& [k, v] : st.shards()[0].metadata()) metadata[k] = v;
  }
  const auto str = [](std::string_view s) { return nlohmann::json(std::string(s)).dump(); };
  std::ostringstream out;
  out << "{\n  \"metadata\": " << metadata.dump() << ",\n  \"tensors\": {";
  bool first = true;
  for (const std::string& name : st.names()) {
    const SafeTensorInfo& info = st.info(name);
    out << (first ? "\n" : ",\n") << "    " << str(name)
        << ": {\"dtype\": " << str(dtype_name(info.dtype))
        << ", \"shape\": " << shape_to_string(info.shape) << ", \"data_offsets\": ["
        << info.data_begin << ", " << info.data_end << "]";
    if (st.is_sharded()) out << ", \"file\": " << str(st.file_of(name));
    out << "}";
    first = false;
  }
  out << (first ? "}\n}\n" : "\n  }\n}\n");
  return out.str();
}

std::string text_inspect(const ShardedSafeTensors& st) {
  std::ostringstream out;
  if (st.is_sharded()) {
    out << "index: " << st.path().string() << " (" << st.shard_files().size() << " shards)\n";
    const auto metadata = nlohmann::json::parse(st.index_metadata_json());
    out << "metadata:" << (metadata.empty() ? " (none)" : "") << "\n";
    for (const auto& [k, v] : metadata.items()) {
      out << "  " << printable(k) << ": "
          << printable(v.is_string() ? v.get<std::string>() : v.dump()) << "\n";
    }
  } else {
    const SafeTensors& file = st.shards()[0];
    out << "file: " << st.path().string() << " (" << file.file_size() << " bytes, header "
        << file.header_size() << " bytes)\n";
    out << "metadata:" << (file.metadata().empty() ? " (none)" : "") << "\n";
    for (const auto& [k, v] : file.metadata()) {
      out << "  " << printable(k) << ": " << printable(v) << "\n";
    }
  }

  std::vector<TensorRow> rows;
  for (const std::string& name : st.names()) {
    const SafeTensorInfo& info = st.info(name);
    rows.push_back(
        {name, info.dtype, info.shape, info.nbytes(), st.is_sharded() ? st.file_of(name) : ""});
  }
  tensor_table(out, rows, st.is_sharded());
  return out.str();
}

// Long arrays (a tokenizer's vocabulary) are cut to their first items in the text view.
constexpr size_t kTextArrayItems = 8;

std::string gguf_text_value(const GgufValue& v) {
  const GgufValue::Array* items = v.as_array();
  if (items == nullptr || items->size() <= kTextArrayItems) return printable(v.to_json());
  std::string out = "[";
  for (size_t i = 0; i < kTextArrayItems; ++i) out += (*items)[i].to_json() + ", ";
  return printable(out + "... (" + std::to_string(items->size()) + " items)]");
}

std::string gguf_type_text(const GgufValue& v) {
  std::string out(gguf_type_name(v.type()));
  if (v.type() == GgufType::Array) {
    out += "[" + std::string(gguf_type_name(v.element_type())) + "]";
  }
  return out;
}

std::string text_inspect(const GgufFile& f, const std::string& path) {
  std::ostringstream out;
  out << "file: " << path << " (" << f.file_size() << " bytes, GGUF v" << f.version()
      << ", alignment " << f.alignment() << ", data at " << f.data_offset() << ")\n";
  out << "metadata:" << (f.metadata().empty() ? " (none)" : "") << "\n";
  for (const GgufKeyValue& kv : f.metadata()) {
    out << "  " << printable(kv.key) << " (" << gguf_type_text(kv.value)
        << "): " << gguf_text_value(kv.value) << "\n";
  }
  std::vector<TensorRow> rows;
  for (const GgufTensorInfo& t : f.tensors())
    rows.push_back({t.name, t.dtype, t.shape, t.nbytes, ""});
  tensor_table(out, rows, false);
  return out.str();
}

// Like the safetensors form; metadata values keep their JSON types, and "data_offsets" are
// relative to the data section.
std::string json_inspect(const GgufFile& f) {
  const auto str = [](std::string_view s) {
    return nlohmann::json(std::string(s))
        .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  };
  std::ostringstream out;
  out << "{\n  \"metadata\": {";
  bool first = true;
  for (const GgufKeyValue& kv : f.metadata()) {
    out << (first ? "" : ", ") << str(kv.key) << ": " << kv.value.to_json();
    first = false;
  }
  out << "},\n  \"tensors\": {";
  first = true;
  for (const GgufTensorInfo& t : f.tensors()) {
    out << (first ? "\n" : ",\n") << "    " << str(t.name)
        << ": {\"dtype\": " << str(dtype_name(t.dtype))
        << ", \"shape\": " << shape_to_string(t.shape) << ", \"data_offsets\": [" << t.offset
        << ", " << t.offset + t.nbytes << "]}";
    first = false;
  }
  out << (first ? "}\n}\n" : "\n  }\n}\n");
  return out.str();
}

void setup_inspect(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "inspect",
      "Show the metadata and tensors (name, dtype, shape, bytes) of a .safetensors file, a "
      "model.safetensors.index.json, a model directory, or a .gguf file");
  auto path = std::make_shared<std::string>();
  auto as_json = std::make_shared<bool>(false);
  cmd->add_option("path", *path, "file, index or directory")->required();
  cmd->add_flag("--json", *as_json,
                "print {\"metadata\": {..}, \"tensors\": {NAME: {dtype, shape, data_offsets}}}; "
                "sharded checkpoints add \"file\" per tensor");
  cmd->callback([path, as_json] {
    // Everything is formatted before anything is printed: a failure prints nothing on stdout.
    if (looks_like_gguf(*path)) {
      const GgufFile f = GgufFile::open(*path);
      out().text(*as_json ? json_inspect(f) : text_inspect(f, *path));
      return;
    }
    const ShardedSafeTensors st = ShardedSafeTensors::open(*path);
    out().text(*as_json ? json_inspect(st) : text_inspect(st));
  });
}

const CommandRegistrar registrar({"inspect", setup_inspect});

}  // namespace
}  // namespace ember::cli
