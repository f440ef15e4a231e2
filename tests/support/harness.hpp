// Drive one stage outside the engine: a PrepareContext with given port infos and datasets, and
// forward/backward calls with plain vectors of tensors (schema port order, nullptr = absent).
// Part of the SDK's testing library (rnnflow::testing), installed as <rnnflow/testing/harness.hpp>:
// include only public headers here.
#pragma once

#include <algorithm>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include <rnnflow/registry.hpp>
#include <rnnflow/stage.hpp>

namespace rnnflow::test {

class FakePrepare : public PrepareContext {
public:
    explicit FakePrepare(const StageSchema& schema, std::uint64_t seed = 1,
                         PrepareMode mode = PrepareMode::fit)
        : schema_(schema), mode_(mode), rng_(seed) {}

    // Set up inputs.
    FakePrepare& info(const std::string& input, PortInfo i) { in_info_[input] = std::move(i); return *this; }
    template <class T> FakePrepare& data(const std::string& input, const std::string& split, T v) {
        in_data_[input + "/" + split] = std::any(std::shared_ptr<const T>(std::make_shared<T>(std::move(v))));
        return *this;
    }
    FakePrepare& dir(std::filesystem::path d) { state_dir_ = std::move(d); return *this; }
    FakePrepare& base(std::filesystem::path d) { base_dir_ = std::move(d); return *this; }

    // Read results.
    const PortInfo& out_info(const std::string& output) const { return out_info_.at(output); }
    bool has_out(const std::string& output, const std::string& split) const {
        return out_data_.count(output + "/" + split) != 0;
    }
    template <class T> const T& out(const std::string& output, const std::string& split) const {
        return *std::any_cast<const std::shared_ptr<const T>&>(out_data_.at(output + "/" + split));
    }

    PrepareMode mode() const override { return mode_; }
    const std::string& stage_id() const override { return id_; }
    const std::vector<std::string>& splits() const override { return splits_; }
    bool connected(const std::string& input) const override { return in_info_.count(input) != 0; }
    const PortInfo& input_info(const std::string& input) const override { return in_info_.at(input); }
    void set_output_info(const std::string& output, PortInfo i) override { out_info_[output] = std::move(i); }
    bool has_input(const std::string& input, const std::string& split) const override {
        return in_data_.count(input + "/" + split) != 0;
    }
    const std::any& input_any(const std::string& input, const std::string& split) const override {
        return in_data_.at(input + "/" + split);
    }
    void put_output_any(const std::string& output, const std::string& split, std::any v) override {
        out_data_[output + "/" + split] = std::move(v);
    }
    std::mt19937_64& rng() override { return rng_; }
    std::filesystem::path state_dir() override {
        if (!state_dir_.empty()) std::filesystem::create_directories(state_dir_);
        return state_dir_;
    }
    const std::filesystem::path& base_dir() const override { return base_dir_; }
    int threads() const override { return 1; }

    std::vector<std::string> splits_{"train", "valid", "test"};
    std::string id_ = "stage";

private:
    const StageSchema& schema_;
    PrepareMode mode_;
    std::mt19937_64 rng_;
    std::map<std::string, PortInfo> in_info_, out_info_;
    std::map<std::string, std::any> in_data_, out_data_;
    std::filesystem::path state_dir_, base_dir_{"."};
};

// Build PortArgs from plain pointers.
inline Inputs make_inputs(const StageSchema& s, std::vector<const Tensor*> v) {
    v.resize(s.inputs().size(), nullptr);
    return Inputs(&s, true, std::move(v));
}
inline Outputs make_outputs(const StageSchema& s, std::vector<Tensor*> v) {
    v.resize(s.outputs().size(), nullptr);
    return Outputs(&s, false, std::move(v));
}
inline Grads make_diff_src(const StageSchema& s, std::vector<Tensor*> v) {
    v.resize(s.inputs().size(), nullptr);
    return Grads(&s, true, std::move(v));
}
inline Grads make_diff_dst(const StageSchema& s, std::vector<Tensor*> v) {
    v.resize(s.outputs().size(), nullptr);
    return Grads(&s, false, std::move(v));
}

// An f32 tensor of `shape` holding `v` (row-major; its size must be the tensor's), with lengths.
// Throws std::logic_error on a size mismatch (safe in static initialisers, unlike REQUIRE).
inline Tensor f32_tensor(Shape shape, const std::vector<float>& v, std::vector<std::int32_t> lengths = {}) {
    Tensor t = Tensor::f32(std::move(shape));
    if (static_cast<std::int64_t>(v.size()) != t.numel()) throw std::logic_error("f32_tensor: wrong value count");
    std::copy(v.begin(), v.end(), t.data<float>());
    t.lengths = std::move(lengths);
    return t;
}

// Params from the schema's defaults with some values set: params_for(Lstm::schema(), {{"hidden", int64_t(8)}}).
Params params_for(const StageSchema& s, const std::map<std::string, ParamValue>& set);

}  // namespace rnnflow::test
