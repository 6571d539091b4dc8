// Reverse-mode autograd. Every op that runs while grad mode is on and sees an input with
// `requiresGrad` records a GradNode on its output: the inputs, and a closure mapping the
// output's gradient to each input's gradient. `backward()` walks the nodes in reverse
// topological order (the tape, recovered from the graph) and accumulates into leaves.

import Foundation

final class GradNode {
    let name: String
    let inputs: [Tensor]
    /// Gradient of the loss w.r.t. each input (nil where an input needs none).
    let backward: (Tensor) -> [Tensor?]

    init(name: String, inputs: [Tensor], backward: @escaping (Tensor) -> [Tensor?]) {
        self.name = name
        self.inputs = inputs
        self.backward = backward
    }
}

public enum GradMode {
    private static let key = "troupe.gradmode.disabled"

    /// Whether ops record their graph on this thread.
    public static var isEnabled: Bool {
        Thread.current.threadDictionary[key] == nil
    }

    /// Runs `body` with recording off (inference, optimiser updates).
    public static func noGrad<T>(_ body: () throws -> T) rethrows -> T {
        let dict = Thread.current.threadDictionary
        let was = dict[key]
        dict[key] = true
        defer { dict[key] = was }
        return try body()
    }
}

extension Tensor {
    /// True when an op on these inputs must record a node.
    static func needsGrad(_ inputs: [Tensor]) -> Bool {
        GradMode.isEnabled && inputs.contains { $0.requiresGrad }
    }

    /// Attaches a node to `self` (an op's fresh output) when any input needs a gradient.
    @discardableResult
    func recording(_ name: String, _ inputs: [Tensor],
                   _ backward: @escaping (Tensor) -> [Tensor?]) -> Tensor {
        if Tensor.needsGrad(inputs) {
            node = GradNode(name: name, inputs: inputs, backward: backward)
            requiresGrad = true
        }
        return self
    }

    var isLeaf: Bool { node == nil }

    /// Back-propagates from this tensor. A non-scalar root needs an explicit `gradient`.
    public func backward(_ gradient: Tensor? = nil) {
        let seed: Tensor
        if let g = gradient {
            precondition(g.shape == shape, "gradient shape \(g.shape) != tensor shape \(shape)")
            seed = g
        } else {
            precondition(count == 1, "backward() without a gradient needs a scalar, got \(shape)")
            seed = Tensor(filled: 1, shape: shape)
        }
        // Topological order by iterative DFS (graphs of deep models overflow recursion).
        var order: [Tensor] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(Tensor, Bool)] = [(self, false)]
        while let (t, expanded) = stack.popLast() {
            if expanded { order.append(t); continue }
            if visited.contains(ObjectIdentifier(t)) { continue }
            visited.insert(ObjectIdentifier(t))
            stack.append((t, true))
            if let n = t.node {
                for i in n.inputs where i.requiresGrad && !visited.contains(ObjectIdentifier(i)) {
                    stack.append((i, false))
                }
            }
        }
        var grads: [ObjectIdentifier: Tensor] = [ObjectIdentifier(self): seed]
        GradMode.noGrad {
            for t in order.reversed() {
                guard let g = grads.removeValue(forKey: ObjectIdentifier(t)) else { continue }
                guard let n = t.node else {
                    t.accumulateGrad(g)
                    continue
                }
                let inGrads = n.backward(g)
                precondition(inGrads.count == n.inputs.count, "\(n.name): gradient count")
                for (input, ig) in zip(n.inputs, inGrads) {
                    guard input.requiresGrad, let ig else { continue }
                    precondition(ig.shape == input.shape,
                                 "\(n.name): gradient shape \(ig.shape) for input \(input.shape)")
                    let id = ObjectIdentifier(input)
                    if let prev = grads[id] { grads[id] = prev + ig } else { grads[id] = ig }
                }
            }
        }
    }

    func accumulateGrad(_ g: Tensor) {
        if let prev = grad { grad = GradMode.noGrad { prev + g } } else { grad = g.clone() }
    }

    /// Clears the accumulated gradient (before the next optimiser step).
    public func zeroGrad() { grad = nil }
}
