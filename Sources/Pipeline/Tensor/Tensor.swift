// Tensor: Float32 storage + shape + strides (+ offset), the value every Pipeline op takes.
// Views (reshape, permute, slice, expand) share storage; kernels call `contiguous()` when
// they need dense row-major memory. Autograd state (requiresGrad, grad, the node that made
// the tensor) lives here too, see Autograd/.

public final class Tensor: @unchecked Sendable, CustomStringConvertible {
    public let storage: TensorStorage
    public let shape: [Int]
    public let strides: [Int]
    public let offset: Int

    /// Leaves with `requiresGrad` receive `.grad` from `backward()`.
    public var requiresGrad: Bool
    public internal(set) var grad: Tensor?
    /// The op that produced this tensor, when it was recorded for autograd.
    var node: GradNode?

    public init(storage: TensorStorage, shape: [Int], strides: [Int]? = nil, offset: Int = 0,
                requiresGrad: Bool = false) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in shape \(shape)")
        self.storage = storage
        self.shape = shape
        self.strides = strides ?? Tensor.contiguousStrides(shape)
        self.offset = offset
        self.requiresGrad = requiresGrad
    }

    // MARK: creation

    public convenience init(zeros shape: [Int], requiresGrad: Bool = false) {
        self.init(storage: TensorStorage(count: shape.reduce(1, *)), shape: shape,
                  requiresGrad: requiresGrad)
    }

    /// A tensor whose elements the caller will all write before reading.
    public convenience init(uninitialized shape: [Int]) {
        self.init(storage: TensorStorage(uninitializedCount: shape.reduce(1, *)), shape: shape)
    }

    public convenience init(_ values: [Float], shape: [Int], requiresGrad: Bool = false) {
        precondition(values.count == shape.reduce(1, *),
                     "\(values.count) values do not fill shape \(shape)")
        let s = TensorStorage(uninitializedCount: values.count)
        values.withUnsafeBufferPointer { src in
            if let base = src.baseAddress { s.pointer.update(from: base, count: values.count) }
        }
        self.init(storage: s, shape: shape, requiresGrad: requiresGrad)
    }

    public convenience init(filled value: Float, shape: [Int]) {
        let s = TensorStorage(uninitializedCount: shape.reduce(1, *))
        s.pointer.update(repeating: value, count: s.count)
        self.init(storage: s, shape: shape)
    }

    public convenience init(scalar value: Float) { self.init([value], shape: []) }

    // MARK: geometry

    public var rank: Int { shape.count }
    public var count: Int { shape.reduce(1, *) }

    public static func contiguousStrides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var acc = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) {
            strides[i] = acc
            acc *= Swift.max(shape[i], 1)
        }
        return strides
    }

    /// Dense row-major with no offset gaps: a kernel may read `count` floats from `dataPointer`.
    public var isContiguous: Bool {
        var expected = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) where shape[i] != 1 {
            if strides[i] != expected { return false }
            expected *= shape[i]
        }
        return true
    }

    /// Address of element [0, 0, …].
    public var dataPointer: UnsafeMutablePointer<Float> { storage.pointer + offset }

    /// Normalises a possibly negative axis.
    public func axis(_ a: Int) -> Int {
        let r = a < 0 ? a + rank : a
        precondition(r >= 0 && r < Swift.max(rank, 1), "axis \(a) out of range for rank \(rank)")
        return r
    }

    // MARK: element access (slow path, for tests and small glue)

    public func item() -> Float {
        precondition(count == 1, "item() on a tensor of shape \(shape)")
        return dataPointer[0]
    }

    public subscript(_ index: Int...) -> Float {
        precondition(index.count == rank, "index \(index) for shape \(shape)")
        var o = offset
        for (i, v) in index.enumerated() {
            precondition(v >= 0 && v < shape[i], "index \(index) out of bounds for \(shape)")
            o += v * strides[i]
        }
        return storage.pointer[o]
    }

    /// Whether every element is a finite number (a scan in place, no copy when contiguous).
    public var isAllFinite: Bool {
        let c = contiguous()
        return UnsafeBufferPointer(start: c.dataPointer, count: c.count).allSatisfy(\.isFinite)
    }

    /// All elements in row-major order.
    public func toArray() -> [Float] {
        let c = contiguous()
        return Array(UnsafeBufferPointer(start: c.dataPointer, count: c.count))
    }

    public var description: String {
        let values = toArray()
        let shown = values.prefix(8).map { String(format: "%.4g", $0) }.joined(separator: ", ")
        return "Tensor(shape: \(shape), [\(shown)\(values.count > 8 ? ", …" : "")])"
    }

    /// The same values, detached from the autograd graph (shares storage).
    public func detached() -> Tensor {
        Tensor(storage: storage, shape: shape, strides: strides, offset: offset)
    }

    /// A dense copy that owns its memory, detached from the graph.
    public func clone() -> Tensor {
        let out = Tensor(uninitialized: shape)
        StridedCopy.copy(from: self, to: out.dataPointer)
        return out
    }
}

import Foundation
