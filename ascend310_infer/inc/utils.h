/**
 * File helpers of the ERNIE Ascend 310 inference app: list preprocess.py's .bin files, read them, write the
 * model's outputs as <name>_<k>.bin (raw bytes of output k, the layout postprocess.py reads).
 */
#ifndef ERNIE_ASCEND310_INFER_INC_UTILS_H_
#define ERNIE_ASCEND310_INFER_INC_UTILS_H_

#include <string>
#include <vector>

#include "include/api/types.h"

// Absolute path of an existing file or folder; "" if it does not exist.
std::string RealPath(const std::string &path);

// Names (not paths) of the .bin files in a folder, sorted.
std::vector<std::string> ListBinFiles(const std::string &folder);

// Whole file into *bytes; false (and a message on stderr) if it cannot be read.
bool ReadFile(const std::string &path, std::vector<char> *bytes);

// Creates a folder (and its parents) unless it exists.
bool MakeDirectory(const std::string &path);

// Writes outputs[k] to <folder>/<input_name without .bin>_<k>.bin, each through a temporary name.
bool WriteOutputs(const std::string &folder, const std::string &input_name,
                  const std::vector<mindspore::MSTensor> &outputs);

#endif  // ERNIE_ASCEND310_INFER_INC_UTILS_H_
