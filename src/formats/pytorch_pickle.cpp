// Restricted unpickler for PyTorch checkpoints (see pytorch_pickle.hpp).
#include "pytorch_pickle.hpp"

#include <bit>
#include <cstring>
#include <limits>
#include <optional>
#include <string_view>
#include <unordered_map>

#include "ember/base/error.hpp"
#include "ember/base/utf8.hpp"
#include "strict_json.hpp"

namespace ember::formats_detail {
namespace {

constexpr size_t kMaxObjects = size_t{1} << 22;
constexpr size_t kMaxStack = size_t{1} << 20;
constexpr size_t kMaxMarks = 4096;
constexpr size_t kMaxMemo = size_t{1} << 22;
constexpr size_t kMaxGlobalLine = 1024;
constexpr size_t kMaxRank = 64;

// The callable or type globals a checkpoint may name.
enum class Global : uint8_t {
  OrderedDict,
  RebuildTensorV2,
  RebuildTensorV3,
  RebuildTensor,
  RebuildParameter,
  RebuildParameterWithState,
  StorageType,  // `dtype` says which
  TorchDType,   // a torch.dtype value such as torch.float8_e4m3fn
};

struct AllowedGlobal {
  std::string_view name;
  Global global;
  DType dtype;  // StorageType, TorchDType
};

constexpr AllowedGlobal kAllowedGlobals[] = {
    {"collections.OrderedDict", Global::OrderedDict, DType::U8},
    {"torch._utils._rebuild_tensor_v2", Global::RebuildTensorV2, DType::U8},
    {"torch._utils._rebuild_tensor_v3", Global::RebuildTensorV3, DType::U8},
    {"torch._utils._rebuild_tensor", Global::RebuildTensor, DType::U8},
    {"torch._utils._rebuild_parameter", Global::RebuildParameter, DType::U8},
    {"torch._utils._rebuild_parameter_with_state", Global::RebuildParameterWithState, DType::U8},
    {"torch.DoubleStorage", Global::StorageType, DType::F64},
    {"torch.FloatStorage", Global::StorageType, DType::F32},
    {"torch.HalfStorage", Global::StorageType, DType::F16},
    {"torch.BFloat16Storage", Global::StorageType, DType::BF16},
    {"torch.LongStorage", Global::StorageType, DType::I64},
    {"torch.IntStorage", Global::StorageType, DType::I32},
    {"torch.ShortStorage", Global::StorageType, DType::I16},
    {"torch.CharStorage", Global::StorageType, DType::I8},
    {"torch.ByteStorage", Global::StorageType, DType::U8},
    {"torch.BoolStorage", Global::StorageType, DType::Bool},
    {"torch.UntypedStorage", Global::StorageType, DType::U8},
    {"torch.storage.UntypedStorage", Global::StorageType, DType::U8},
    {"torch.float64", Global::TorchDType, DType::F64},
    {"torch.float32", Global::TorchDType, DType::F32},
    {"torch.float16", Global::TorchDType, DType::F16},
    {"torch.bfloat16", Global::TorchDType, DType::BF16},
    {"torch.float8_e4m3fn", Global::TorchDType, DType::F8_E4M3},
    {"torch.float8_e5m2", Global::TorchDType, DType::F8_E5M2},
    {"torch.int64", Global::TorchDType, DType::I64},
    {"torch.int32", Global::TorchDType, DType::I32},
    {"torch.int16", Global::TorchDType, DType::I16},
    {"torch.int8", Global::TorchDType, DType::I8},
    {"torch.uint64", Global::TorchDType, DType::U64},
    {"torch.uint32", Global::TorchDType, DType::U32},
    {"torch.uint16", Global::TorchDType, DType::U16},
    {"torch.uint8", Global::TorchDType, DType::U8},
    {"torch.bool", Global::TorchDType, DType::Bool},
};

// Opcode names for messages, for the opcodes that are refused.
std::string opcode_text(uint8_t op) {
  static constexpr std::pair<uint8_t, std::string_view> kNames[] = {
      {'i', "INST"},
      {'o', "OBJ"},
      {0x92, "NEWOBJ_EX"},
      {0x82, "EXT1"},
      {0x83, "EXT2"},
      {0x84, "EXT4"},
      {'P', "PERSID"},
      {'b', "BUILD"},
      {'I', "INT"},
      {'L', "LONG"},
      {'S', "STRING"},
      {'V', "UNICODE"},
      {'F', "FLOAT"},
      {'p', "PUT"},
      {'g', "GET"},
      {'T', "BINSTRING"},
      {'U', "SHORT_BINSTRING"},
      {0x8b, "LONG4"},
      {0x8f, "EMPTY_SET"},
      {0x90, "ADDITEMS"},
      {0x91, "FROZENSET"},
      {0x96, "BYTEARRAY8"},
      {0x97, "NEXT_BUFFER"},
      {0x98, "READONLY_BUFFER"},
  };
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex = "0x";
  hex.push_back(kHex[op >> 4]);
  hex.push_back(kHex[op & 0xf]);
  for (const auto& [code, name] : kNames) {
    if (code == op) return std::string(name) + " (" + hex + ")";
  }
  return hex;
}

std::string_view kind_name(PickleKind kind) {
  switch (kind) {
    case PickleKind::None:
      return "None";
    case PickleKind::Bool:
      return "bool";
    case PickleKind::Int:
    case PickleKind::BigInt:
      return "int";
    case PickleKind::Float:
      return "float";
    case PickleKind::String:
      return "str";
    case PickleKind::Bytes:
      return "bytes";
    case PickleKind::Tuple:
      return "tuple";
    case PickleKind::List:
      return "list";
    case PickleKind::Dict:
      return "dict";
    case PickleKind::Global:
      return "global";
    case PickleKind::Storage:
      return "storage";
    case PickleKind::Tensor:
      return "tensor";
  }
  return "?";
}

class Unpickler {
 public:
  Unpickler(std::span<const std::byte> bytes, const std::string& source)
      : bytes_(bytes), source_(source) {}

  PickleResult run() {
    while (true) {
      op_at_ = pos_;
      const uint8_t op = read_u8();
      if (op == '.') break;
      step(op);
    }
    if (!marks_.empty()) fail("STOP with an open MARK");
    if (stack_.size() != 1) {
      fail("STOP with " + std::to_string(stack_.size()) + " values on the stack instead of 1");
    }
    result_.root = stack_.back();
    result_.consumed = pos_;
    return std::move(result_);
  }

 private:
  [[noreturn]] void fail(const std::string& message) const {
    throw Error("pytorch: " + source_ + ": pickle at byte " + std::to_string(op_at_) + ": " +
                message);
  }

  // --- reading the input ---
  std::span<const std::byte> take(uint64_t n) {
    if (n > bytes_.size() - pos_) {
      fail("truncated: needs " + std::to_string(n) + " bytes, " +
           std::to_string(bytes_.size() - pos_) + " left");
    }
    const auto out = bytes_.subspan(pos_, static_cast<size_t>(n));
    pos_ += static_cast<size_t>(n);
    return out;
  }
  uint64_t read_le(int width) {
    const auto b = take(static_cast<uint64_t>(width));
    uint64_t v = 0;
    for (int i = width - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(b[i]);
    return v;
  }
  uint8_t read_u8() { return static_cast<uint8_t>(read_le(1)); }
  std::string read_string(uint64_t n) {
    const auto b = take(n);
    return std::string(reinterpret_cast<const char*>(b.data()), b.size());
  }
  std::string read_line() {
    for (size_t end = pos_; end < bytes_.size() && end - pos_ <= kMaxGlobalLine; ++end) {
      if (bytes_[end] == std::byte{'\n'}) {
        std::string line = read_string(end - pos_);
        ++pos_;
        return line;
      }
    }
    fail("GLOBAL: no end of line within " + std::to_string(kMaxGlobalLine) + " bytes");
  }

  // --- objects and the stack ---
  uint32_t add(PickleObject object) {
    if (result_.objects.size() >= kMaxObjects) {
      fail("more than " + std::to_string(kMaxObjects) + " objects");
    }
    result_.objects.push_back(std::move(object));
    return static_cast<uint32_t>(result_.objects.size() - 1);
  }
  PickleObject& obj(uint32_t id) { return result_.objects[id]; }
  void push(uint32_t id) {
    if (stack_.size() >= kMaxStack) fail("stack deeper than " + std::to_string(kMaxStack));
    stack_.push_back(id);
  }
  void push_new(PickleObject object) { push(add(std::move(object))); }
  size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  uint32_t pop() {
    if (stack_.size() <= floor()) fail("stack underflow");
    const uint32_t id = stack_.back();
    stack_.pop_back();
    return id;
  }
  uint32_t top() {
    if (stack_.size() <= floor()) fail("stack underflow");
    return stack_.back();
  }
  std::vector<uint32_t> pop_mark() {
    if (marks_.empty()) fail("no MARK to pop to");
    const size_t mark = marks_.back();
    marks_.pop_back();
    std::vector<uint32_t> items(stack_.begin() + static_cast<ptrdiff_t>(mark), stack_.end());
    stack_.resize(mark);
    return items;
  }
  static PickleObject make(PickleKind kind) {
    PickleObject o;
    o.kind = kind;
    return o;
  }
  static PickleObject make_int(int64_t v) {
    PickleObject o = make(PickleKind::Int);
    o.integer = v;
    return o;
  }
  void push_string(PickleKind kind, uint64_t length) {
    PickleObject o = make(kind);
    o.text = read_string(length);
    if (kind == PickleKind::String && !is_valid_utf8(o.text)) fail("string is not valid UTF-8");
    push_new(std::move(o));
  }
  void push_tuple(std::vector<uint32_t> items) {
    PickleObject o = make(PickleKind::Tuple);
    o.items = std::move(items);
    push_new(std::move(o));
  }
  PickleObject& container(uint32_t id, PickleKind kind, const char* opcode) {
    PickleObject& o = obj(id);
    if (o.kind != kind) {
      fail(std::string(opcode) + " on a " + std::string(kind_name(o.kind)) + ", not a " +
           std::string(kind_name(kind)));
    }
    return o;
  }
  void set_items(uint32_t dict, const std::vector<uint32_t>& pairs, const char* opcode) {
    if (pairs.size() % 2 != 0) fail(std::string(opcode) + " with an odd number of items");
    PickleObject& d = container(dict, PickleKind::Dict, opcode);
    for (size_t i = 0; i < pairs.size(); i += 2) {
      const PickleKind k = obj(pairs[i]).kind;
      if (k != PickleKind::String && k != PickleKind::Int && k != PickleKind::Bool &&
          k != PickleKind::None && k != PickleKind::Tuple && k != PickleKind::Float) {
        fail(std::string(opcode) + ": a " + std::string(kind_name(k)) + " is not a dict key");
      }
    }
    d.items.insert(d.items.end(), pairs.begin(), pairs.end());
  }

  // --- memo ---
  void memo_put(uint64_t index) {
    if (memo_.size() >= kMaxMemo && memo_.find(index) == memo_.end()) {
      fail("memo larger than " + std::to_string(kMaxMemo) + " entries");
    }
    memo_[index] = top();
  }
  void memo_get(uint64_t index) {
    const auto it = memo_.find(index);
    if (it == memo_.end()) fail("memo entry " + std::to_string(index) + " was never stored");
    push(it->second);
  }

  // --- globals ---
  void push_global(const std::string& module, const std::string& name) {
    const std::string full = module + "." + name;
    for (size_t i = 0; i < std::size(kAllowedGlobals); ++i) {
      if (kAllowedGlobals[i].name == full) {
        PickleObject o = make(PickleKind::Global);
        o.index = i;
        o.text = full;
        push_new(std::move(o));
        return;
      }
    }
    fail("global " + quote_name(full) +
         " is not allowed (a weights-only checkpoint names only tensor-rebuilding globals)");
  }

  int64_t int_arg(uint32_t id, const char* what) {
    const PickleObject& o = obj(id);
    if (o.kind != PickleKind::Int) fail(std::string(what) + " is not an int");
    return o.integer;
  }
  Shape int_tuple_arg(uint32_t id, const char* what) {
    const PickleObject& o = obj(id);
    if (o.kind != PickleKind::Tuple) fail(std::string(what) + " is not a tuple");
    if (o.items.size() > kMaxRank) fail(std::string(what) + " has more than 64 dimensions");
    Shape out;
    for (const uint32_t item : o.items) out.push_back(int_arg(item, what));
    return out;
  }
  const PickleObject& tensor_arg(uint32_t id, const char* what) {
    const PickleObject& o = obj(id);
    if (o.kind != PickleKind::Tensor) fail(std::string(what) + " is not a tensor");
    return o;
  }
  void check_arity(const std::string& name, const std::vector<uint32_t>& args, size_t lo,
                   size_t hi) {
    if (args.size() < lo || args.size() > hi) {
      fail(quote_name(name) + " called with " + std::to_string(args.size()) + " arguments");
    }
  }

  // _rebuild_tensor(storage, offset, size, stride)
  // _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, backward_hooks[, metadata])
  // _rebuild_tensor_v3(storage, offset, size, stride, requires_grad, backward_hooks, dtype
  //                    [, metadata]): an untyped (byte) storage viewed as `dtype`
  PickleObject rebuild_tensor(const std::string& name, const std::vector<uint32_t>& args,
                              int version) {
    if (version == 1) check_arity(name, args, 4, 4);
    if (version == 2) check_arity(name, args, 6, 7);
    if (version == 3) check_arity(name, args, 7, 8);
    const size_t metadata_at = version == 3 ? 7 : 6;
    const PickleObject& storage = obj(args[0]);
    if (storage.kind != PickleKind::Storage)
      fail(quote_name(name) + ": argument 1 is not a storage");
    PickleTensorRef t;
    t.storage = storage.index;
    t.offset = int_arg(args[1], "tensor storage offset");
    t.shape = int_tuple_arg(args[2], "tensor size");
    t.strides = int_tuple_arg(args[3], "tensor stride");
    if (t.shape.size() != t.strides.size())
      fail(quote_name(name) + ": size and stride differ in rank");
    if (version >= 2) {
      if (obj(args[4]).kind != PickleKind::Bool) fail("tensor requires_grad is not a bool");
      if (obj(args[5]).kind != PickleKind::Dict) fail("tensor backward_hooks is not a dict");
      if (args.size() > metadata_at) {
        const PickleObject& metadata = obj(args[metadata_at]);
        if (metadata.kind != PickleKind::None &&
            !(metadata.kind == PickleKind::Dict && metadata.items.empty())) {
          fail("tensor metadata (conjugate/negative bits) is not supported");
        }
      }
    }
    if (version == 3) {
      const PickleObject& dtype = obj(args[6]);
      if (dtype.kind != PickleKind::Global ||
          kAllowedGlobals[dtype.index].global != Global::TorchDType) {
        fail(quote_name(name) + ": argument 7 is not a torch dtype");
      }
      if (result_.storages[t.storage].dtype != DType::U8) {
        fail(quote_name(name) + ": storage is not an untyped (byte) storage");
      }
      t.dtype = kAllowedGlobals[dtype.index].dtype;
    } else {
      t.dtype = result_.storages[t.storage].dtype;
    }
    result_.tensors.push_back(std::move(t));
    PickleObject o = make(PickleKind::Tensor);
    o.index = result_.tensors.size() - 1;
    return o;
  }

  void reduce() {
    const uint32_t args_id = pop();
    const uint32_t callable_id = pop();
    const PickleObject& callable = obj(callable_id);
    if (callable.kind != PickleKind::Global) {
      fail("REDUCE calls a " + std::string(kind_name(callable.kind)) + ", not an allowed global");
    }
    const PickleObject& args_obj = obj(args_id);
    if (args_obj.kind != PickleKind::Tuple) fail("REDUCE arguments are not a tuple");
    const std::vector<uint32_t> args = args_obj.items;
    const std::string name = callable.text;
    const Global global = kAllowedGlobals[callable.index].global;
    switch (global) {
      case Global::OrderedDict: {
        check_arity(name, args, 0, 0);
        PickleObject d = make(PickleKind::Dict);
        d.ordered = true;
        push_new(std::move(d));
        return;
      }
      case Global::RebuildTensorV2:
        push_new(rebuild_tensor(name, args, 2));
        return;
      case Global::RebuildTensorV3:
        push_new(rebuild_tensor(name, args, 3));
        return;
      case Global::RebuildTensor:
        push_new(rebuild_tensor(name, args, 1));
        return;
      case Global::RebuildParameter:
      case Global::RebuildParameterWithState: {
        const bool with_state = global == Global::RebuildParameterWithState;
        check_arity(name, args, with_state ? 4 : 3, with_state ? 4 : 3);
        tensor_arg(args[0], "parameter data");
        if (obj(args[1]).kind != PickleKind::Bool) fail("parameter requires_grad is not a bool");
        if (obj(args[2]).kind != PickleKind::Dict) fail("parameter backward_hooks is not a dict");
        push(args[0]);  // a parameter is its data
        return;
      }
      case Global::StorageType:
        fail("storage type " + quote_name(name) + " may only appear in a persistent id");
      case Global::TorchDType:
        fail("dtype " + quote_name(name) + " is not callable");
    }
  }

  // ('storage', storage_type, key, location, numel[, view_metadata])
  void persistent_load() {
    const PickleObject& pid = obj(pop());
    if (pid.kind != PickleKind::Tuple) fail("persistent id is not a tuple");
    const std::vector<uint32_t>& f = pid.items;
    if (f.size() != 5 && f.size() != 6) {
      fail("persistent id has " + std::to_string(f.size()) + " fields, not 5 or 6");
    }
    if (obj(f[0]).kind != PickleKind::String || obj(f[0]).text != "storage") {
      fail("persistent id is not a ('storage', ...) tuple");
    }
    const PickleObject& type = obj(f[1]);
    if (type.kind != PickleKind::Global ||
        kAllowedGlobals[type.index].global != Global::StorageType) {
      fail("persistent id: storage type is not a torch storage class");
    }
    PickleStorageRef s;
    s.dtype = kAllowedGlobals[type.index].dtype;
    if (obj(f[2]).kind != PickleKind::String) fail("persistent id: storage key is not a string");
    s.key = obj(f[2]).text;
    if (obj(f[3]).kind != PickleKind::String) fail("persistent id: location is not a string");
    s.location = obj(f[3]).text;
    s.numel = int_arg(f[4], "persistent id: storage size");
    if (s.numel < 0) fail("persistent id: negative storage size");
    if (f.size() == 6 && obj(f[5]).kind != PickleKind::None) {
      const PickleObject& view = obj(f[5]);
      if (view.kind != PickleKind::Tuple || view.items.size() != 3 ||
          obj(view.items[0]).kind != PickleKind::String) {
        fail("persistent id: view metadata is not (key, offset, size)");
      }
      s.is_view = true;
      s.view_key = obj(view.items[0]).text;
      s.view_offset = int_arg(view.items[1], "persistent id: view offset");
      s.view_numel = int_arg(view.items[2], "persistent id: view size");
    }
    result_.storages.push_back(std::move(s));
    PickleObject o = make(PickleKind::Storage);
    o.index = result_.storages.size() - 1;
    push_new(std::move(o));
  }

  void step(uint8_t op) {
    switch (op) {
      case 0x80: {  // PROTO
        const uint8_t protocol = read_u8();
        if (protocol < 2 || protocol > 5) {
          fail("pickle protocol " + std::to_string(protocol) + " (supported: 2 to 5)");
        }
        return;
      }
      case 0x95: {  // FRAME: a length hint; the frame's opcodes follow inline
        const uint64_t length = read_le(8);
        if (length > bytes_.size() - pos_) fail("FRAME longer than the rest of the input");
        return;
      }
      case '(':  // MARK
        if (marks_.size() >= kMaxMarks) fail("more than " + std::to_string(kMaxMarks) + " MARKs");
        marks_.push_back(stack_.size());
        return;
      case '0':  // POP
        pop();
        return;
      case '1':  // POP_MARK
        pop_mark();
        return;
      case '2':  // DUP
        push(top());
        return;
      case 'N':
        push_new(make(PickleKind::None));
        return;
      case 0x88:
      case 0x89: {  // NEWTRUE, NEWFALSE
        PickleObject o = make(PickleKind::Bool);
        o.integer = op == 0x88 ? 1 : 0;
        push_new(std::move(o));
        return;
      }
      case 'J':  // BININT
        push_new(make_int(static_cast<int32_t>(static_cast<uint32_t>(read_le(4)))));
        return;
      case 'K':  // BININT1
        push_new(make_int(static_cast<int64_t>(read_le(1))));
        return;
      case 'M':  // BININT2
        push_new(make_int(static_cast<int64_t>(read_le(2))));
        return;
      case 0x8a: {  // LONG1: little-endian two's complement
        const uint8_t n = read_u8();
        const auto b = take(n);
        if (n <= 8) {
          uint64_t v = 0;
          for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(b[i]);
          if (n > 0 && n < 8 && (static_cast<uint8_t>(b[n - 1]) & 0x80) != 0) {
            v |= ~uint64_t{0} << (8 * n);  // sign-extend
          }
          push_new(make_int(static_cast<int64_t>(v)));
        } else {
          PickleObject o = make(PickleKind::BigInt);
          o.text.assign(reinterpret_cast<const char*>(b.data()), b.size());
          push_new(std::move(o));
        }
        return;
      }
      case 'G': {  // BINFLOAT: big-endian double
        const auto b = take(8);
        uint64_t v = 0;
        for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(b[i]);
        PickleObject o = make(PickleKind::Float);
        o.real = std::bit_cast<double>(v);
        push_new(std::move(o));
        return;
      }
      case 0x8c:  // SHORT_BINUNICODE
        push_string(PickleKind::String, read_le(1));
        return;
      case 'X':  // BINUNICODE
        push_string(PickleKind::String, read_le(4));
        return;
      case 0x8d:  // BINUNICODE8
        push_string(PickleKind::String, read_le(8));
        return;
      case 'C':  // SHORT_BINBYTES
        push_string(PickleKind::Bytes, read_le(1));
        return;
      case 'B':  // BINBYTES
        push_string(PickleKind::Bytes, read_le(4));
        return;
      case 0x8e:  // BINBYTES8
        push_string(PickleKind::Bytes, read_le(8));
        return;
      case ')':  // EMPTY_TUPLE
        push_tuple({});
        return;
      case 't':  // TUPLE
        push_tuple(pop_mark());
        return;
      case 0x85:
      case 0x86:
      case 0x87: {  // TUPLE1..3
        std::vector<uint32_t> items(op - 0x84);
        for (size_t i = items.size(); i-- > 0;) items[i] = pop();
        push_tuple(std::move(items));
        return;
      }
      case ']':  // EMPTY_LIST
        push_new(make(PickleKind::List));
        return;
      case 'l': {  // LIST
        PickleObject o = make(PickleKind::List);
        o.items = pop_mark();
        push_new(std::move(o));
        return;
      }
      case 'a': {  // APPEND
        const uint32_t item = pop();
        container(top(), PickleKind::List, "APPEND").items.push_back(item);
        return;
      }
      case 'e': {  // APPENDS
        const std::vector<uint32_t> items = pop_mark();
        PickleObject& list = container(top(), PickleKind::List, "APPENDS");
        list.items.insert(list.items.end(), items.begin(), items.end());
        return;
      }
      case '}':  // EMPTY_DICT
        push_new(make(PickleKind::Dict));
        return;
      case 'd': {  // DICT
        const std::vector<uint32_t> pairs = pop_mark();
        push_new(make(PickleKind::Dict));
        set_items(top(), pairs, "DICT");
        return;
      }
      case 's': {  // SETITEM
        const uint32_t value = pop();
        const uint32_t key = pop();
        set_items(top(), {key, value}, "SETITEM");
        return;
      }
      case 'u': {  // SETITEMS
        const std::vector<uint32_t> pairs = pop_mark();
        set_items(top(), pairs, "SETITEMS");
        return;
      }
      case 'q':  // BINPUT
        memo_put(read_le(1));
        return;
      case 'r':  // LONG_BINPUT
        memo_put(read_le(4));
        return;
      case 0x94:  // MEMOIZE
        memo_put(memo_.size());
        return;
      case 'h':  // BINGET
        memo_get(read_le(1));
        return;
      case 'j':  // LONG_BINGET
        memo_get(read_le(4));
        return;
      case 'c': {  // GLOBAL
        const std::string module = read_line();
        const std::string name = read_line();
        push_global(module, name);
        return;
      }
      case 0x93: {  // STACK_GLOBAL
        const PickleObject& name = obj(pop());
        const PickleObject& module = obj(pop());
        if (module.kind != PickleKind::String || name.kind != PickleKind::String) {
          fail("STACK_GLOBAL: module and name are not strings");
        }
        push_global(module.text, name.text);
        return;
      }
      case 'R':  // REDUCE
        reduce();
        return;
      case 0x81: {  // NEWOBJ: cls.__new__(cls, *args); only OrderedDict, as torch allows
        const uint32_t args_id = pop();
        const PickleObject& cls = obj(pop());
        if (cls.kind != PickleKind::Global ||
            kAllowedGlobals[cls.index].global != Global::OrderedDict) {
          fail("NEWOBJ of " +
               (cls.kind == PickleKind::Global
                    ? quote_name(cls.text)
                    : std::string("a ") + std::string(kind_name(cls.kind))) +
               " is not allowed");
        }
        if (obj(args_id).kind != PickleKind::Tuple || !obj(args_id).items.empty()) {
          fail("NEWOBJ of 'collections.OrderedDict' with arguments");
        }
        PickleObject d = make(PickleKind::Dict);
        d.ordered = true;
        push_new(std::move(d));
        return;
      }
      case 'Q':  // BINPERSID
        persistent_load();
        return;
      case 'b': {  // BUILD: only an OrderedDict's attributes (state_dict's _metadata), dropped
        const PickleObject& state = obj(pop());
        const PickleObject& target = obj(top());
        if (target.kind != PickleKind::Dict || !target.ordered || state.kind != PickleKind::Dict) {
          fail("BUILD (0x62) sets attributes of a " + std::string(kind_name(target.kind)) +
               "; only an OrderedDict's attribute dict is allowed");
        }
        return;
      }
      default:
        fail("opcode " + opcode_text(op) + " is not allowed in a weights-only checkpoint");
    }
  }

  std::span<const std::byte> bytes_;
  const std::string& source_;
  size_t pos_ = 0;
  size_t op_at_ = 0;
  std::vector<uint32_t> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, uint32_t> memo_;
  PickleResult result_;
};

}  // namespace

PickleResult unpickle_restricted(std::span<const std::byte> bytes, const std::string& source) {
  return Unpickler(bytes, source).run();
}

}  // namespace ember::formats_detail
