#pragma once
// Internal: a restricted unpickler with the semantics of torch.load(weights_only=True).
//
// It interprets the pickle opcodes torch.save emits (protocols 2 to 5) as data and rebuilds a
// value graph: None, bools, ints, floats, strings, bytes, tuples, lists, dicts (OrderedDict is a
// dict with `ordered`), storages named by persistent ids, and tensors. Only these globals exist:
//   collections.OrderedDict                      called (REDUCE) or created (NEWOBJ) with ()
//   torch._utils._rebuild_tensor_v2 / _v3 / _rebuild_tensor, _rebuild_parameter(_with_state)
//   torch.<T>Storage (FloatStorage, HalfStorage, ...), torch(.storage).UntypedStorage
//                                                only as the type inside a persistent id
//   torch.<dtype> (float32, float8_e4m3fn, uint16, ...)
//                                                only as _rebuild_tensor_v3's dtype argument
// Any other global is refused by name when the GLOBAL / STACK_GLOBAL opcode names it, before it
// could be called; so are the opcodes that build arbitrary objects (INST, OBJ, NEWOBJ_EX, EXT*;
// NEWOBJ of anything but OrderedDict), BUILD on anything but an OrderedDict, and text
// persistent ids. Nothing is executed:
// REDUCE on an allowed global runs Ember's own rebuild code.
//
// Bounds: every opcode reads only inside the input; the stack, the mark stack, the memo and the
// object count have fixed limits; memory is linear in the input size.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "ember/core/dtype.hpp"
#include "ember/core/tensor.hpp"

namespace ember::formats_detail {

enum class PickleKind : uint8_t {
  None,
  Bool,
  Int,
  BigInt,  // an integer that does not fit int64: `text` holds its little-endian bytes
  Float,
  String,
  Bytes,
  Tuple,
  List,
  Dict,
  Global,   // an allowed global that is not called here (a storage type); `text` is its name
  Storage,  // `index` into PickleResult::storages
  Tensor,   // `index` into PickleResult::tensors
};

struct PickleObject {
  PickleKind kind = PickleKind::None;
  bool ordered = false;         // Dict: an OrderedDict
  int64_t integer = 0;          // Bool, Int
  double real = 0;              // Float
  size_t index = 0;             // Storage, Tensor; Global: which allowed global
  std::string text;             // String, Bytes, BigInt, Global
  std::vector<uint32_t> items;  // Tuple, List; Dict: key, value, key, value, ...
};

// A storage named by a persistent id ('storage', type, key, location, numel[, view]).
struct PickleStorageRef {
  std::string key;
  std::string location;  // "cpu", "cuda:0", ...; tensors are loaded on the CPU regardless
  DType dtype = DType::U8;
  int64_t numel = 0;  // elements of the whole storage record
  // Legacy format only: the persistent id may name a view (view_key, offset, numel) of the
  // storage `key`.
  bool is_view = false;
  std::string view_key;
  int64_t view_offset = 0;
  int64_t view_numel = 0;
};

struct PickleTensorRef {
  size_t storage = 0;  // into PickleResult::storages
  // The storage's type, or for _rebuild_tensor_v3 the dtype its bytes are viewed as; offset,
  // shape and strides count elements of this dtype.
  DType dtype = DType::U8;
  int64_t offset = 0;
  Shape shape;
  Shape strides;
};

struct PickleResult {
  std::vector<PickleObject> objects;
  std::vector<PickleStorageRef> storages;
  std::vector<PickleTensorRef> tensors;
  uint32_t root = 0;    // object returned by STOP
  size_t consumed = 0;  // bytes up to and including STOP
};

// Interprets one pickle at the start of `bytes` (trailing bytes are left for the caller).
// Throws ember::Error prefixed with `source` naming the offending global, opcode or limit.
PickleResult unpickle_restricted(std::span<const std::byte> bytes, const std::string& source);

}  // namespace ember::formats_detail
