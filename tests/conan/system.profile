# `conan create . -pr:a tests/conan/system.profile`: the package built and tested against the system's
# libraries (tests/conan/system), not ConanCenter's, so it works offline. Used by `make test-conan`.
include(default)

[replace_requires]
nlohmann_json/*: nlohmann_json/system
openssl/*: openssl/system
libcurl/*: libcurl/system
zlib/*: zlib/system
