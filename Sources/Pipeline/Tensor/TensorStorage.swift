// The flat Float32 buffer behind one or more tensors (views share it).
// Either owned (allocated here) or borrowed from an owner that keeps the memory alive,
// such as a memory-mapped safetensors file, so weights load without a copy.

public final class TensorStorage: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int
    private let owner: AnyObject?

    /// Allocates `count` floats, zero-filled.
    public init(count: Int) {
        precondition(count >= 0, "negative storage size")
        self.count = count
        self.pointer = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
        self.pointer.initialize(repeating: 0, count: max(count, 1))
        self.owner = nil
    }

    /// Allocates `count` floats without clearing them: for outputs every element of which
    /// a kernel is about to write.
    public init(uninitializedCount count: Int) {
        self.count = count
        self.pointer = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
        self.owner = nil
    }

    /// Borrows memory owned by `owner` (kept alive as long as this storage lives).
    public init(borrowing pointer: UnsafeMutablePointer<Float>, count: Int, owner: AnyObject) {
        self.pointer = pointer
        self.count = count
        self.owner = owner
    }

    public var buffer: UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(start: pointer, count: count)
    }

    deinit {
        if owner == nil { pointer.deallocate() }
    }
}
