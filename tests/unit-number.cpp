// Numbers (detail/number.hpp through the unmarshaller): exact by default, never rounded.
#include <string>

#include "test_support.hpp"

using test::one;
using test::one_error;

namespace {
std::string n(const std::string& text, ddb2os::number_mode mode = ddb2os::number_mode::exact) {
    ddb2os::unmarshal_options o;
    o.numbers = mode;
    return one("{\"N\":\"" + text + "\"}", o);
}
std::string n_error(const std::string& text) { return one_error("{\"N\":\"" + text + "\"}"); }
const std::string d38 = "12345678901234567890123456789012345678";
}  // namespace

TEST_CASE("numbers: exact mode copies JSON-grammar numbers as they are") {
    CHECK(n("0") == R"({"v":0})");
    CHECK(n("-0") == R"({"v":-0})");
    CHECK(n("1.50") == R"({"v":1.50})");
    CHECK(n("-12.5E+3") == R"({"v":-12.5E+3})");
    CHECK(n("1e-5") == R"({"v":1e-5})");
    CHECK(n(d38) == "{\"v\":" + d38 + "}");
    CHECK(n("-" + d38) == "{\"v\":-" + d38 + "}");
}

TEST_CASE("numbers: exact mode rewrites only what JSON's grammar forbids") {
    CHECK(n("+1") == R"({"v":1})");
    CHECK(n("007") == R"({"v":7})");
    CHECK(n("-007.50") == R"({"v":-7.50})");
    CHECK(n(".5") == R"({"v":0.5})");
    CHECK(n("-.5e3") == R"({"v":-0.5e3})");
    CHECK(n("5.") == R"({"v":5})");
    CHECK(n("+00.00") == R"({"v":0.00})");
    CHECK(n("1e+007") == R"({"v":1e+007})");
}

TEST_CASE("numbers: DynamoDB's range, at both ends") {
    CHECK(n("9.9999999999999999999999999999999999999E+125") == R"({"v":9.9999999999999999999999999999999999999E+125})");
    CHECK(n("-9.9999999999999999999999999999999999999E+125") == R"({"v":-9.9999999999999999999999999999999999999E+125})");
    CHECK(n("1E-130") == R"({"v":1E-130})");
    CHECK(n("-1E-130") == R"({"v":-1E-130})");
    CHECK(n("0.00001E-125") == R"({"v":0.00001E-125})");
    CHECK(n("0E+999999999999") == R"({"v":0E+999999999999})");  // zero, whatever the exponent
    CHECK(n("1" + std::string(125, '0')) == "{\"v\":1" + std::string(125, '0') + "}");
    CHECK(n(d38 + "000") == "{\"v\":" + d38 + "000}");  // trailing zeros are not significant
    CHECK(n("0.000" + d38) == "{\"v\":0.000" + d38 + "}");

    const std::string range = " is outside DynamoDB's number range (magnitude 1E-130 to 9.9999999999999999999999999999999999999E+125)";
    CHECK(n_error("1E+126") == "[ddb2os.number.out_of_range] v.N: \"1E+126\"" + range);
    CHECK(n_error("10E+125") == "[ddb2os.number.out_of_range] v.N: \"10E+125\"" + range);
    CHECK(n_error("1" + std::string(126, '0')) ==
          "[ddb2os.number.out_of_range] v.N: \"1000000000000000000000000000000000000000000000000000000000000000...\" (127 bytes)" + range);
    CHECK(n_error("1E-131") == "[ddb2os.number.out_of_range] v.N: \"1E-131\"" + range);
    CHECK(n_error("0.1E-130") == "[ddb2os.number.out_of_range] v.N: \"0.1E-130\"" + range);
    CHECK(n_error("1e999999999999999999999") == "[ddb2os.number.out_of_range] v.N: \"1e999999999999999999999\"" + range);
    CHECK(n_error(d38 + "9") == "[ddb2os.number.out_of_range] v.N: \"" + d38 +
                                     "9\" has more than 38 significant digits, the most a DynamoDB number holds");
    CHECK(n_error("1." + std::string(37, '0') + "1") ==
          "[ddb2os.number.out_of_range] v.N: \"1." + std::string(37, '0') +
              "1\" has more than 38 significant digits, the most a DynamoDB number holds");
}

TEST_CASE("numbers: text that is not a number") {
    for (const char* bad : {"", " 1", "1 ", "1.2.3", "abc", "NaN", "Infinity", "-Infinity", "1e", "e5", "--1",
                            "0x10", "1_000", "+", "-", ".", "1e+", "1,5"}) {
        CAPTURE(bad);
        CHECK(n_error(bad) == "[ddb2os.number.invalid] v.N: \"" + std::string(bad) + "\" is not a number");
    }
    CHECK(one_error(R"({"N":"\u0031\u0000"})") == "[ddb2os.number.invalid] v.N: \"1\\u0000\" is not a number");
    CHECK(one_error(R"({"N":1})") == "[ddb2os.attribute.wrong_json_type] v: N holds a number; it must hold a string");
}

TEST_CASE("numbers: string mode keeps the text, as a JSON string") {
    using ddb2os::number_mode;
    CHECK(n("+007.50", number_mode::string) == R"({"v":"+007.50"})");
    CHECK(n(d38, number_mode::string) == "{\"v\":\"" + d38 + "\"}");
    CHECK(n("1E-130", number_mode::string) == R"({"v":"1E-130"})");
    CHECK(one(R"({"NS":["1","2.5"]})", {number_mode::string}) == R"({"v":["1","2.5"]})");
}

TEST_CASE("numbers: double mode is the nearest double, shortest text") {
    using ddb2os::number_mode;
    CHECK(n("0.1", number_mode::double_) == R"({"v":0.1})");
    CHECK(n("1E+2", number_mode::double_) == R"({"v":100})");
    CHECK(n("-0", number_mode::double_) == R"({"v":-0})");
    CHECK(n(d38, number_mode::double_) == R"({"v":1.2345678901234568e+37})");
    CHECK(n("9.9999999999999999999999999999999999999E+125", number_mode::double_) == R"({"v":1e+126})");
    CHECK(n("1E-130", number_mode::double_) == R"({"v":1e-130})");
    CHECK(n(".5", number_mode::double_) == R"({"v":0.5})");
    // Past a long's range, an integral double keeps an exponent: its digits alone are a long to OpenSearch.
    CHECK(n("12345678901234567890.99", number_mode::double_) == R"({"v":1.2345678901234567e+19})");
    CHECK(n("-9223372036854775808", number_mode::double_) == R"({"v":-9223372036854775808})");  // a long
    CHECK(n("-9223372036854777856", number_mode::double_) == R"({"v":-9.223372036854778e+18})");  // the next
    CHECK(n("9223372036854775807", number_mode::double_) == R"({"v":9.223372036854776e+18})");  // rounds to 2^63
    CHECK(n("9223372036854774784", number_mode::double_) == R"({"v":9223372036854774784})");  // below: a long
    CHECK(n("1E+21", number_mode::double_) == R"({"v":1e+21})");
}

TEST_CASE("numbers: parse_number in isolation") {
    using ddb2os::detail::number_status;
    ddb2os::detail::number_parts p;
    CHECK(ddb2os::detail::parse_number("-12.50e-3", p) == number_status::ok);
    CHECK(p.negative);
    CHECK(p.int_digits == "12");
    CHECK(p.frac_digits == "50");
    CHECK(p.exponent == "-3");
    CHECK(p.json_grammar);
    ddb2os::detail::number_parts q;
    CHECK(ddb2os::detail::parse_number("+1", q) == number_status::ok);
    CHECK_FALSE(q.json_grammar);
}

TEST_CASE("numbers: the short plain number's one pass agrees with the general rules") {
    // parse_number takes JSON-grammar numbers without an exponent, up to 38 characters, in one pass
    // and everything else by the general rules: every outcome and every part must be the same as the
    // general rules give. Generated texts around the limits: lengths 0-45, signs, points, leading
    // zeros, exponents, other bytes.
    using ddb2os::detail::number_parts;
    using ddb2os::detail::number_status;
    const std::string alphabet = "0000111999-+..eE5x ";
    std::uint32_t seed = 7;
    const auto next = [&seed] {  // the high bits: an LCG's low bits repeat with short periods
        seed = seed * 1664525u + 1013904223u;
        return seed >> 12;
    };
    std::size_t mismatches = 0, fast = 0, general = 0;
    std::vector<std::string> texts = {"0", "-0", "00", "0.", ".5", "5.", "-", "", "1e5", "0.0", "-0.000",
                                      std::string(38, '9'), std::string(39, '9'), "0." + std::string(36, '0'),
                                      "0." + std::string(35, '0') + "1", "-" + std::string(37, '1'),
                                      "1." + std::string(36, '0'), "1." + std::string(37, '0')};
    for (int k = 0; k < 200000; ++k) {
        std::string t(next() % 46, '0');
        const bool plain = next() % 2 == 0;  // mostly digits, a sign and a point: the fast path's inputs
        for (char& c : t) c = plain ? static_cast<char>('0' + next() % 10) : alphabet[next() % alphabet.size()];
        if (plain && !t.empty() && next() % 2 == 0) t[0] = static_cast<char>('1' + next() % 9);
        if (plain && !t.empty() && next() % 3 == 0) t[next() % t.size()] = '.';
        if (plain && next() % 4 == 0) t.insert(0, "-");
        texts.push_back(t);
    }
    for (const std::string& t : texts) {
        number_parts a, b;
        const number_status sa = ddb2os::detail::parse_number(t, a);
        const number_status sb = ddb2os::detail::parse_number_general(t, b);
        const bool same = sa == sb && (sa != number_status::ok ||
                                       (a.negative == b.negative && a.int_digits == b.int_digits &&
                                        a.frac_digits == b.frac_digits && a.exponent == b.exponent &&
                                        a.json_grammar == b.json_grammar));
        mismatches += !same;
        if (!same) MESSAGE("differs on \"" << t << "\"");
        (sa == number_status::ok && a.json_grammar && a.exponent.empty() && t.size() <= 38 ? fast : general) += 1;
    }
    CHECK(mismatches == 0);
    CHECK(fast > 20000);  // both kinds are reached
    CHECK(general > 20000);
}
