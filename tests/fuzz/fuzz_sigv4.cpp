// libFuzzer target: SigV4 (sigv4.hpp) on arbitrary requests. The input's first byte picks the
// service and options, then lines: the method, the URL, "name: value" headers, an empty line, and
// the body. sign() and the reusable signer must agree: the same Authorization header, or errors
// with the same id; and a signature is 64 lower-case hex digits. A second signing of the same
// request by the same signer gives the same header (its cached state holds nothing of the first),
// and a signing a second later agrees with sign() at that second (the signer's per-second state).
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include <ddb2os/sigv4.hpp>

namespace {

[[noreturn]] void fail(const char* what, const std::string& a = {}, const std::string& b = {}) {
    std::fprintf(stderr, "fuzz_sigv4: %s\n  sign():  %s\n  signer:  %s\n", what, a.c_str(), b.c_str());
    std::abort();
}

std::string_view next_line(std::string_view& s) {
    const std::size_t nl = s.find('\n');
    const std::string_view line = s.substr(0, nl);
    s.remove_prefix(nl == std::string_view::npos ? s.size() : nl + 1);
    return line;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    namespace sigv4 = ddb2os::sigv4;
    const unsigned char b = data[0];
    static const char* const services[] = {"es", "aoss", "dynamodb", "s3"};
    const std::string service = services[b & 3];
    sigv4::options o = sigv4::options::for_service(service);
    if (b & 4) o.normalize_path = !o.normalize_path;
    if (b & 8) o.double_encode_path = !o.double_encode_path;
    const bool token = (b & 16) != 0;

    std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
    sigv4::request req;
    req.method = next_line(in);
    req.url = next_line(in);
    while (!in.empty()) {
        const std::string_view line = next_line(in);
        if (line.empty()) break;
        const std::size_t colon = line.find(':');
        req.headers.push_back({line.substr(0, colon), colon == std::string_view::npos ? std::string_view() : line.substr(colon + 1)});
    }
    req.body = sigv4::payload::bytes(in);

    const ddb2os::credentials creds("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token ? "token/=+" : "");
    // 2015-08-30T12:36:00Z, the AWS test suite's time.
    const auto t = std::chrono::system_clock::time_point(std::chrono::seconds(1440938160));

    const auto signed_by_sign = [&](std::chrono::system_clock::time_point at) {
        std::string auth;
        try {
            const sigv4::signing_result r = sigv4::sign(req, creds, sigv4::signing_params{"us-east-1", service, at, o});
            for (const auto& h : r.headers)
                if (h.name == "Authorization") auth = h.value;
            if (r.signature.size() != 64 || r.signature.find_first_not_of("0123456789abcdef") != std::string::npos)
                fail("a signature that is not 64 hex digits", r.signature);
            if (auth.empty() || auth.find("Signature=" + r.signature) == std::string::npos)
                fail("no Authorization with the signature", auth);
        } catch (const ddb2os::error& e) {
            auth = "error " + e.id();
        }
        return auth;
    };
    const std::string one = signed_by_sign(t), later = signed_by_sign(t + std::chrono::seconds(1));
    std::string two, three, four;
    try {
        sigv4::signer s(creds, "us-east-1", service, o);
        two = std::string(s.sign(req, t).authorization);
        three = std::string(s.sign(req, t).authorization);
        four = std::string(s.sign(req, t + std::chrono::seconds(1)).authorization);  // its per-second state renewed
    } catch (const ddb2os::error& e) {
        two = three = four = "error " + e.id();
    }
    if (one != two) fail("sign() and signer disagree", one, two);
    if (two != three) fail("the signer's second signing differs", two, three);
    if (later != four) fail("the signer's next second differs from sign()", later, four);
    return 0;
}
