// A consumer of the installed (or vendored) ddb2os: converts one record and prints the body.
#include <iostream>

#include <ddb2os/ddb2os.hpp>

int main() {
    const char* event = R"({"Records":[{"eventID":"1","eventName":"INSERT","eventSourceARN":
      "arn:aws:dynamodb:us-east-1:123456789012:table/Books/stream/2024-01-01T00:00:00.000",
      "dynamodb":{"Keys":{"bookTitle":{"S":"The Da Vinci Code"},"author":{"S":"Dan Brown"}},
      "NewImage":{"author":{"S":"Dan Brown"},"bookTitle":{"S":"The Da Vinci Code"},"year":{"N":"2003"}},
      "SequenceNumber":"100","StreamViewType":"NEW_IMAGE"}}]})";
    ddb2os::bulk_options options;
    options.key_schemas["Books"] = {"author", "bookTitle"};
    const auto result = ddb2os::build_bulk(event, options);
    for (const auto& body : result.bodies) std::cout << body.data;
    return result.errors.empty() ? 0 : 1;
}
