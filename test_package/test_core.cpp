// The Conan package's test of its core component (ddb2os::ddb2os): the headers compile and link, a
// bulk body and a signature come out, and libcurl is not part of the program.
#include <cstdio>
#include <fstream>
#include <string>

#include <ddb2os/ddb2os.hpp>

int main() {
    const char* event = R"({"Records":[{"eventID":"1","eventName":"INSERT","eventSourceARN":"arn:aws:dynamodb:us-east-1:1:table/Books/stream/x",
        "dynamodb":{"SequenceNumber":"1","Keys":{"id":{"S":"a"}},"NewImage":{"id":{"S":"a"},"n":{"N":"1.50"}}}}]})";
    const ddb2os::bulk_result r = ddb2os::build_bulk(event);
    if (r.bodies.size() != 1 || !r.errors.empty() ||
        r.bodies[0].data != "{\"index\":{\"_index\":\"books\",\"_id\":\"a\"}}\n{\"id\":\"a\",\"n\":1.50}\n")
        return 1;
    std::fputs(r.bodies[0].data.c_str(), stdout);

    const ddb2os::credentials creds("AKIDEXAMPLE", "secret");
    const ddb2os::sigv4::request req{"GET", "https://example.com/", {}, {}};
    const std::chrono::system_clock::time_point t{};
    ddb2os::sigv4::signer signer(creds, "us-east-1", "es");
    const auto& h = signer.sign(req, t);
    if (h.authorization != ddb2os::sigv4::sign(req, creds, {"us-east-1", "es", t}).headers.back().value) return 1;
    std::printf("%.*s\n", static_cast<int>(h.authorization.size()), h.authorization.data());
#if defined(__linux__)
    std::ifstream maps("/proc/self/maps");
    for (std::string line; std::getline(maps, line);)
        if (line.find("libcurl") != std::string::npos) {
            std::fprintf(stderr, "the core target linked libcurl: %s\n", line.c_str());
            return 1;
        }
#endif
    return 0;
}
