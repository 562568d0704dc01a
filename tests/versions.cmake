# The version is written where each tool reads it: CMake's project(), config.hpp (the macros and
# version_string), conanfile.py and pyproject.toml. This test (ctest: versions_agree) fails when they
# differ, naming the file. Run: cmake -DSOURCE_DIR=... -DVERSION=<project version> -P versions.cmake
function(expect file regex)
  file(READ "${SOURCE_DIR}/${file}" text)
  if(NOT text MATCHES "${regex}")
    message(FATAL_ERROR "${file} does not give version ${VERSION} (looked for: ${regex})")
  endif()
endfunction()
string(REPLACE "." ";" parts "${VERSION}")
list(GET parts 0 major)
list(GET parts 1 minor)
list(GET parts 2 patch)
expect(include/ddb2os/config.hpp "#define DDB2OS_VERSION_MAJOR ${major}\n#define DDB2OS_VERSION_MINOR ${minor}\n#define DDB2OS_VERSION_PATCH ${patch}\n")
string(REPLACE "." "\\." v "${VERSION}")
expect(include/ddb2os/config.hpp "version_string = \"${v}\";")
expect(conanfile.py "\n    version = \"${v}\"\n")
expect(pyproject.toml "\nversion = \"${v}\"\n")
message(STATUS "version ${VERSION} in CMakeLists.txt, config.hpp, conanfile.py and pyproject.toml")
