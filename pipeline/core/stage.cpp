#include "stage.hpp"

#include <charconv>
#include <cstdlib>

namespace rnnflow {

std::int64_t Stage::value(const std::string& name) const {
    throw Error("has no value '" + name + "'");
}

void StageState::put_number(const std::string& name, double v) {
    char buf[64];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    put_text(name, std::string(buf, r.ptr));
}

const Tensor* StageState::tensor(const std::string& name) const {
    auto it = tensors_.find(name);
    return it == tensors_.end() ? nullptr : &it->second;
}

const std::string* StageState::text(const std::string& name) const {
    auto it = texts_.find(name);
    return it == texts_.end() ? nullptr : &it->second;
}

double StageState::number(const std::string& name, double fallback) const {
    const std::string* t = text(name);
    if (!t) return fallback;
    double v = 0;
    const auto r = std::from_chars(t->data(), t->data() + t->size(), v);
    RNNFLOW_CHECK(r.ec == std::errc() && r.ptr == t->data() + t->size(), "saved number '", name,
                  "' is not a number: '", *t, "'");
    return v;
}

}  // namespace rnnflow
