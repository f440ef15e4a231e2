// The text of the rnnflow::Error a callable throws, for tests that check messages.
#pragma once

#include <functional>
#include <string>

#include "pipeline/core/error.hpp"

namespace rnnflow::test {

enum class ErrorPart { message, with_hint };

// message(): the message alone; with_hint: format() (message and hint). "(no error)" when fn
// returns normally; other exceptions pass through.
inline std::string error_text(const std::function<void()>& fn, ErrorPart part = ErrorPart::message) {
    try {
        fn();
    } catch (const Error& e) {
        return part == ErrorPart::message ? e.message() : e.format();
    }
    return "(no error)";
}

}  // namespace rnnflow::test
