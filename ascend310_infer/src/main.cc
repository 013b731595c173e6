/**
 * ERNIE inference on Ascend 310 with the MindSpore C++ API.
 *
 * Runs an exported MindIR (export.py) on preprocess.py's .bin files: for every file name in --input0_path (sorted),
 * the same name in --input0/1/2_path holds input_ids / input_mask / token_type_id as raw little-endian int32 rows;
 * output k of the model is written to --result_path/<name without .bin>_<k>.bin as raw bytes (float32 logits or
 * emissions, int32 CRF tags), which postprocess.py reads. `python -m src.inference` is the CPU stand-in with the
 * same flags and files.
 */
#include <gflags/gflags.h>

#include <chrono>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "include/api/context.h"
#include "include/api/model.h"
#include "include/api/serialization.h"
#include "include/api/types.h"
#include "inc/utils.h"

DEFINE_string(mindir_path, "", "exported MindIR");
DEFINE_string(input0_path, "", "folder of input_ids .bin files (preprocess.py's 00_data)");
DEFINE_string(input1_path, "", "folder of input_mask .bin files (01_data)");
DEFINE_string(input2_path, "", "folder of token_type_id .bin files (02_data)");
DEFINE_string(result_path, "./result_files", "folder for the <name>_<k>.bin outputs");
DEFINE_int32(device_id, 0, "Ascend device id");

namespace {

constexpr size_t kNumInputs = 3;

// Shape of the rows in a file of num_bytes: the model's declared [batch, seq], an open batch (-1) taken from the file
// size, or [1, n] when the sequence length is open too (the Python stand-in does the same). Empty if it cannot fit.
std::vector<int64_t> InputShape(const std::vector<int64_t> &declared, size_t num_bytes) {
  const int64_t values = static_cast<int64_t>(num_bytes / sizeof(int32_t));
  if (declared.size() != 2 || num_bytes % sizeof(int32_t) != 0 || values == 0) {
    return {};
  }
  const int64_t batch = declared[0];
  const int64_t seq = declared[1];
  if (seq < 0) {
    return {1, values};
  }
  if (values % seq != 0 || (batch >= 0 && values != batch * seq)) {
    return {};
  }
  return {values / seq, seq};
}

std::shared_ptr<mindspore::Context> AscendContext(int32_t device_id) {
  auto context = std::make_shared<mindspore::Context>();
  auto ascend = std::make_shared<mindspore::AscendDeviceInfo>();
  ascend->SetDeviceID(device_id);
  // As the model zoo's 310 apps: float32 ops may run in float16 where the 310 has no float32 kernel,
  // and the high-precision implementation is chosen where there is a choice.
  ascend->SetPrecisionMode("allow_fp32_to_fp16");
  ascend->SetOpSelectImplMode("high_precision");
  context->MutableDeviceInfo().push_back(ascend);
  return context;
}

}  // namespace

int main(int argc, char **argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  const std::string mindir = RealPath(FLAGS_mindir_path);
  if (mindir.empty()) {
    std::cerr << "error: --mindir_path '" << FLAGS_mindir_path << "' does not exist" << std::endl;
    return 1;
  }

  mindspore::Graph graph;
  mindspore::Status status = mindspore::Serialization::Load(mindir, mindspore::ModelType::kMindIR, &graph);
  if (status != mindspore::kSuccess) {
    std::cerr << "error: cannot load " << mindir << ": " << status.ToString() << std::endl;
    return 1;
  }
  mindspore::Model model;
  status = model.Build(mindspore::GraphCell(graph), AscendContext(FLAGS_device_id));
  if (status != mindspore::kSuccess) {
    std::cerr << "error: building " << mindir << " for Ascend device " << FLAGS_device_id << " failed: "
              << status.ToString() << std::endl;
    return 1;
  }
  std::vector<mindspore::MSTensor> model_inputs = model.GetInputs();
  if (model_inputs.size() != kNumInputs) {
    std::cerr << "error: " << mindir << " has " << model_inputs.size()
              << " inputs; expected input_ids, input_mask, token_type_id (export it with export.py)" << std::endl;
    return 1;
  }

  const std::vector<std::string> folders = {FLAGS_input0_path, FLAGS_input1_path, FLAGS_input2_path};
  const std::vector<std::string> names = ListBinFiles(folders[0]);
  if (names.empty()) {
    std::cerr << "error: no .bin files in --input0_path '" << folders[0] << "'" << std::endl;
    return 1;
  }
  if (!MakeDirectory(FLAGS_result_path)) {
    return 1;
  }

  double total_ms = 0.0;
  for (const std::string &name : names) {
    std::vector<std::vector<char>> buffers(kNumInputs);
    std::vector<mindspore::MSTensor> inputs;
    for (size_t i = 0; i < kNumInputs; ++i) {
      const std::string path = folders[i] + "/" + name;
      if (!ReadFile(path, &buffers[i])) {
        return 1;
      }
      std::vector<int64_t> shape = InputShape(model_inputs[i].Shape(), buffers[i].size());
      if (shape.empty()) {
        std::cerr << "error: " << path << " (" << buffers[i].size() << " bytes) does not fit input "
                  << model_inputs[i].Name() << " of the model" << std::endl;
        return 1;
      }
      inputs.emplace_back(model_inputs[i].Name(), model_inputs[i].DataType(), shape, buffers[i].data(),
                          buffers[i].size());
    }
    std::vector<mindspore::MSTensor> outputs;
    const auto start = std::chrono::steady_clock::now();
    status = model.Predict(inputs, &outputs);
    const auto end = std::chrono::steady_clock::now();
    if (status != mindspore::kSuccess) {
      std::cerr << "error: inference on " << name << " failed: " << status.ToString() << std::endl;
      return 1;
    }
    total_ms += std::chrono::duration<double, std::milli>(end - start).count();
    if (!WriteOutputs(FLAGS_result_path, name, outputs)) {
      return 1;
    }
  }
  std::cout << "NN inference cost average time: " << total_ms / names.size() << " ms of infer_count "
            << names.size() << std::endl;
  return 0;
}
