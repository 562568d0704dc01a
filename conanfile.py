"""Conan 2 recipe for ddb2os: the headers, as a header-only package (conan-center's layout).

    conan create . --build=missing                              # against ConanCenter's dependencies
    conan create . -pr:a tests/conan/system.profile --build=missing -nr   # against the system's, offline

Components: ddb2os::ddb2os (the core, with the sync engine: nlohmann_json, OpenSSL's libcrypto,
threads) and ddb2os::curl (the libcurl transport: libcurl, zlib), as in the project's own CMake package; the
root target Conan adds, with both, is ddb2os::all.
"""
import os

from conan import ConanFile
from conan.tools.build import check_min_cppstd
from conan.tools.files import copy
from conan.tools.layout import basic_layout

required_conan_version = ">=2.0"


class Ddb2osConan(ConanFile):
    name = "ddb2os"
    version = "0.1.0"
    description = "DynamoDB Streams to OpenSearch: unmarshaller, _id mapper, SigV4, bulk bodies, sync engine"
    license = "Apache-2.0"
    topics = ("dynamodb", "opensearch", "aws", "sigv4", "header-only")
    package_type = "header-library"
    settings = "os", "arch", "compiler", "build_type"
    options = {"with_curl": [True, False]}
    default_options = {"with_curl": True}
    exports_sources = "include/*", "LICENSE"
    no_copy_source = True

    def layout(self):
        basic_layout(self, src_folder=".")

    def requirements(self):
        self.requires("nlohmann_json/[>=3.10 <4]")
        self.requires("openssl/[>=1.1 <4]")
        if self.options.with_curl:
            self.requires("libcurl/[>=7.78 <9]")
            self.requires("zlib/[>=1.2.11 <2]")

    def package_id(self):
        self.info.clear()  # headers only: one package for every configuration

    def validate(self):
        if self.settings.get_safe("compiler.cppstd"):
            check_min_cppstd(self, 17)

    def package(self):
        copy(self, "LICENSE", self.source_folder, os.path.join(self.package_folder, "licenses"))
        copy(self, "*.hpp", os.path.join(self.source_folder, "include"), os.path.join(self.package_folder, "include"))

    def package_info(self):
        self.cpp_info.bindirs = []
        self.cpp_info.libdirs = []
        self.cpp_info.set_property("cmake_file_name", "ddb2os")
        # As the installed package's own version file: a 0.x minor version may break its API.
        self.cpp_info.set_property("cmake_config_version_compat", "SameMinorVersion")
        # The root target links every component; the core keeps the name of the project's own target.
        self.cpp_info.set_property("cmake_target_name", "ddb2os::all")

        core = self.cpp_info.components["core"]
        core.set_property("cmake_target_name", "ddb2os::ddb2os")
        core.bindirs = []
        core.libdirs = []
        core.requires = ["nlohmann_json::nlohmann_json", "openssl::crypto"]
        if self.settings.os in ("Linux", "FreeBSD"):
            core.system_libs = ["pthread"]  # sync.hpp's sender thread (glibc before 2.34 needs it linked)

        if self.options.with_curl:
            curl = self.cpp_info.components["curl"]
            curl.set_property("cmake_target_name", "ddb2os::curl")
            curl.bindirs = []
            curl.libdirs = []
            curl.requires = ["core", "libcurl::libcurl", "zlib::zlib"]
