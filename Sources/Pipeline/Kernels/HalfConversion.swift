// fp16 ↔ fp32 and bf16 → fp32 conversion of raw buffers (weights on disk are fp16/bf16;
// compute is fp32). Bit-exact IEEE conversions, round-to-nearest-even for fp32 → fp16.

public enum HalfConversion {
    public static func fp16ToFloat(_ src: UnsafePointer<UInt16>, _ dst: UnsafeMutablePointer<Float>, count n: Int) {
        Parallel.forChunks(n, grain: 1 << 16) { range in
            for i in range { dst[i] = Float(Float16(bitPattern: src[i])) }
        }
    }

    public static func floatToFP16(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<UInt16>, count n: Int) {
        Parallel.forChunks(n, grain: 1 << 16) { range in
            for i in range { dst[i] = Float16(src[i]).bitPattern }
        }
    }

    /// bfloat16 is the top half of a float32: widening is a shift.
    public static func bf16ToFloat(_ src: UnsafePointer<UInt16>, _ dst: UnsafeMutablePointer<Float>, count n: Int) {
        Parallel.forChunks(n, grain: 1 << 16) { range in
            for i in range { dst[i] = Float(bitPattern: UInt32(src[i]) << 16) }
        }
    }

    /// fp32 → bf16 with round-to-nearest-even (NaN kept quiet), as torch does.
    public static func floatToBF16(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<UInt16>, count n: Int) {
        for i in 0..<n {
            let bits = src[i].bitPattern
            if src[i].isNaN { dst[i] = UInt16(bits >> 16) | 0x40; continue }
            let rounding = ((bits >> 16) & 1) + 0x7FFF
            dst[i] = UInt16((bits &+ rounding) >> 16)
        }
    }
}
