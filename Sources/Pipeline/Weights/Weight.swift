// A layer's weight as the checkpoint stores it. fp32 weights are a tensor (a zero-copy view
// of the mapped file); fp16/bf16 weights stay half precision in the mapping and are widened
// to fp32 only while their layer runs, so an SD 1.5 UNet costs 1.7 GB of memory, not 3.4 GB
// (design: "fp16 weights are not blown up to a full fp32 copy of the model").

public final class Weight: @unchecked Sendable {
    public let shape: [Int]
    private let dense: Tensor?
    private let file: SafetensorsFile?
    private let key: String

    public init(_ tensor: Tensor) {
        shape = tensor.shape; dense = tensor; file = nil; key = ""
    }

    init(file: SafetensorsFile, key: String, shape: [Int]) {
        self.shape = shape; self.file = file; self.key = key; dense = nil
    }

    /// True when the weight is kept in half precision and widened per use.
    public var isLazy: Bool { dense == nil }

    /// The fp32 values: the stored tensor, or a fresh widened copy for half weights.
    public var tensor: Tensor {
        if let dense { return dense }
        // Entries were validated when the file was opened; a failure here is a bug.
        let t = try! file!.tensor(key)
        return t.shape == shape ? t : t.reshaped(shape)
    }
}
