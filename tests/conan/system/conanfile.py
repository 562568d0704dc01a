"""One "system" recipe for each of ddb2os's dependencies, for testing the Conan package offline: each
declares the library the machine already has (Debian's -dev packages), with the CMake file and target
names of the ConanCenter recipe it stands in for. tests/conan/system.profile swaps them in with
[replace_requires]. Made with `conan export tests/conan/system --name NAME --version system`.
"""
from conan import ConanFile

# name -> (CMake file name, {component: (CMake target, system libraries)})
LIBRARIES = {
    "nlohmann_json": ("nlohmann_json", {"nlohmann_json": ("nlohmann_json::nlohmann_json", [])}),
    "openssl": ("OpenSSL", {"crypto": ("OpenSSL::Crypto", ["crypto"]), "ssl": ("OpenSSL::SSL", ["ssl"])}),
    "libcurl": ("CURL", {"curl": ("CURL::libcurl", ["curl"])}),
    "zlib": ("ZLIB", {"zlib": ("ZLIB::ZLIB", ["z"])}),
}


class SystemLibrary(ConanFile):
    package_type = "shared-library"
    settings = "os", "arch", "compiler", "build_type"

    def package_id(self):
        self.info.clear()

    def package_info(self):
        file_name, components = LIBRARIES[self.name]
        self.cpp_info.set_property("cmake_file_name", file_name)
        self.cpp_info.includedirs = []  # the system's own include path
        self.cpp_info.bindirs = []
        self.cpp_info.libdirs = []
        for component, (target, libs) in components.items():
            c = self.cpp_info.components[component]
            c.set_property("cmake_target_name", target)
            c.system_libs = libs
            c.includedirs = []
            c.bindirs = []
            c.libdirs = []
        if self.name == "openssl":
            self.cpp_info.components["ssl"].requires = ["crypto"]
