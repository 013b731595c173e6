#include "inc/utils.h"

#include <dirent.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>

std::string RealPath(const std::string &path) {
  char resolved[PATH_MAX] = {0};
  if (path.empty() || realpath(path.c_str(), resolved) == nullptr) {
    return "";
  }
  return std::string(resolved);
}

std::vector<std::string> ListBinFiles(const std::string &folder) {
  std::vector<std::string> names;
  DIR *dir = opendir(folder.c_str());
  if (dir == nullptr) {
    std::cerr << "error: cannot open folder " << folder << ": " << std::strerror(errno) << std::endl;
    return names;
  }
  for (struct dirent *entry = readdir(dir); entry != nullptr; entry = readdir(dir)) {
    std::string name = entry->d_name;
    if (name.size() > 4 && name.compare(name.size() - 4, 4, ".bin") == 0) {
      names.push_back(name);
    }
  }
  closedir(dir);
  std::sort(names.begin(), names.end());
  return names;
}

bool ReadFile(const std::string &path, std::vector<char> *bytes) {
  std::ifstream file(path, std::ios::binary | std::ios::ate);
  if (!file) {
    std::cerr << "error: cannot read " << path << std::endl;
    return false;
  }
  std::streamsize size = file.tellg();
  file.seekg(0, std::ios::beg);
  bytes->resize(static_cast<size_t>(size));
  if (size > 0 && !file.read(bytes->data(), size)) {
    std::cerr << "error: short read of " << path << std::endl;
    return false;
  }
  return true;
}

bool MakeDirectory(const std::string &path) {
  std::string partial;
  for (size_t pos = 0; pos != std::string::npos;) {
    pos = path.find('/', pos + 1);
    partial = path.substr(0, pos);
    if (!partial.empty() && mkdir(partial.c_str(), 0755) != 0 && errno != EEXIST) {
      std::cerr << "error: cannot create folder " << partial << ": " << std::strerror(errno) << std::endl;
      return false;
    }
  }
  return true;
}

bool WriteOutputs(const std::string &folder, const std::string &input_name,
                  const std::vector<mindspore::MSTensor> &outputs) {
  const std::string stem = input_name.substr(0, input_name.size() - 4);  // drop ".bin"
  for (size_t k = 0; k < outputs.size(); ++k) {
    const std::string path = folder + "/" + stem + "_" + std::to_string(k) + ".bin";
    const std::string tmp = path + ".tmp";
    std::shared_ptr<const void> data = outputs[k].Data();
    std::ofstream file(tmp, std::ios::binary | std::ios::trunc);
    file.write(static_cast<const char *>(data.get()), static_cast<std::streamsize>(outputs[k].DataSize()));
    file.close();
    if (!file || std::rename(tmp.c_str(), path.c_str()) != 0) {
      std::cerr << "error: cannot write " << path << std::endl;
      return false;
    }
  }
  return true;
}
