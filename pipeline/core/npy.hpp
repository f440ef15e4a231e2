// NumPy .npy files, the format feature extractors write (numpy.save): the magic "\x93NUMPY",
// format version (major, minor byte), the header length (2 bytes little-endian in version 1.0,
// 4 bytes in 2.0 and 3.0), a header — a Python dict literal such as
//   {'descr': '<f4', 'fortran_order': False, 'shape': (500, 49, 512), }
// padded with spaces and ended by '\n' — then the raw data.
//
// Read: dtype '<f4' (little-endian float32) as it is and '<f8' (float64) converted to f32
// (values beyond f32's range become ±inf; callers that refuse non-finite values see them);
// C order (row-major) only; any rank, a 0-d array becomes shape (). Every size is checked
// against the file before anything is allocated: the data must be exactly shape × item size
// bytes. Errors name the file and what is wrong.
// Not supported: other dtypes (integers, float16, big-endian), Fortran order, object arrays
// and pickles, .npz archives.
#pragma once

#include <filesystem>
#include <string>

#include "error.hpp"
#include "tensor.hpp"

namespace rnnflow {

// An f32 tensor of the array's shape. Throws Error naming the file.
Tensor load_npy(const std::filesystem::path& file);
// The same from the file's bytes; `where` names it in messages.
Tensor load_npy_bytes(const std::string& bytes, const std::string& where);

}  // namespace rnnflow
