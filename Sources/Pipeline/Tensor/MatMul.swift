// Matrix products through cblas_sgemm: matmul with broadcast batch dims, and Linear
// (x·Wᵀ + b) with the bias folded into GEMM's beta. Backward uses transposed views, which
// BLAS.operand turns into transpose flags instead of copies.

extension Tensor {
    /// The trailing [rows, cols] matrix at batch index 0, sharing storage.
    func matrixView() -> Tensor {
        Tensor(storage: storage, shape: Array(shape.suffix(2)), strides: Array(strides.suffix(2)), offset: offset)
    }

    /// [..., M, K] · [..., K, N] → [..., M, N]; batch dims broadcast.
    public func matmul(_ b: Tensor) -> Tensor {
        let a = self
        precondition(a.rank >= 2 && b.rank >= 2, "matmul needs rank ≥ 2: \(a.shape) · \(b.shape)")
        let m = a.shape[a.rank - 2], k = a.shape[a.rank - 1]
        let k2 = b.shape[b.rank - 2], n = b.shape[b.rank - 1]
        precondition(k == k2, "matmul inner dims differ: \(a.shape) · \(b.shape)")
        let batchA = Array(a.shape.dropLast(2)), batchB = Array(b.shape.dropLast(2))
        let batch = ElementwiseKernels.broadcastShape(batchA, batchB)
        let out = Tensor(uninitialized: batch + [m, n])
        let nb = batch.reduce(1, *)
        FlopCounter.add(2 * Double(nb * m * n * k))

        if b.rank == 2 && a.isContiguous {
            // Shared right operand: fold the batch into M, one GEMM.
            let ob = BLAS.operand(b)
            BLAS.sgemm(transA: false, transB: ob.trans, m: nb * m, n: n, k: k,
                       a: a.dataPointer, lda: k, b: ob.pointer, ldb: ob.ld,
                       c: out.dataPointer, ldc: n)
        } else {
            let ea = BLAS.gemmFriendly(a.detached().expanded(batch + [m, k]))
            let eb = BLAS.gemmFriendly(b.detached().expanded(batch + [k, n]))
            let la = BLAS.operand(ea.matrixView()), lb = BLAS.operand(eb.matrixView())
            let bsa = Array(ea.strides.dropLast(2)), bsb = Array(eb.strides.dropLast(2))
            let run = { (i: Int) in
                var rem = i, offA = 0, offB = 0
                for d in stride(from: batch.count - 1, through: 0, by: -1) {
                    let idx = rem % batch[d]; rem /= batch[d]
                    offA += idx * bsa[d]; offB += idx * bsb[d]
                }
                BLAS.sgemm(transA: la.trans, transB: lb.trans, m: m, n: n, k: k,
                           a: la.pointer + offA, lda: la.ld, b: lb.pointer + offB, ldb: lb.ld,
                           c: out.dataPointer + i * m * n, ldc: n)
            }
            // Many small products: one per core with BLAS single-threaded (OpenBLAS runs
            // small GEMMs on one thread anyway). Large ones: BLAS threads inside each.
            if nb >= Parallel.cores && m * n * k <= 1 << 21 {
                BLAS.withSingleThread { Parallel.forEach(nb) { run($0) } }
            } else {
                for i in 0..<nb { run(i) }
            }
        }
        let (shA, shB) = (a.shape, b.shape)
        let (da, db) = (a.detached(), b.detached())
        return out.recording("matmul", [a, b]) { g in
            [a.requiresGrad ? g.matmul(db.transposed()).sumToShape(shA) : nil,
             b.requiresGrad ? da.transposed().matmul(g).sumToShape(shB) : nil]
        }
    }

    /// y = x·Wᵀ + b for x [..., in], W [out, in], b [out].
    public func linear(_ weight: Tensor, _ bias: Tensor?) -> Tensor {
        let inF = weight.shape[1], outF = weight.shape[0]
        precondition(shape.last == inF, "linear: input \(shape) does not end in \(inF)")
        let x = contiguous()
        let rows = count / inF
        FlopCounter.add(2 * Double(rows * inF * outF))
        let out = Tensor(uninitialized: Array(shape.dropLast()) + [outF])
        if let bias {
            let bc = bias.contiguous()
            for r in 0..<rows { (out.dataPointer + r * outF).update(from: bc.dataPointer, count: outF) }
        }
        let w = BLAS.operand(weight.detached().transposed())
        BLAS.sgemm(transA: false, transB: w.trans, m: rows, n: outF, k: inF,
                   a: x.dataPointer, lda: inF, b: w.pointer, ldb: w.ld,
                   beta: bias == nil ? 0 : 1, c: out.dataPointer, ldc: outF)
        let inputs = bias.map { [self, weight, $0] } ?? [self, weight]
        let xd = x.detached(), wd = weight.detached(), inShape = shape
        return out.recording("linear", inputs) { g in
            let g2 = g.reshaped([rows, outF])
            var grads: [Tensor?] = [
                self.requiresGrad ? g2.matmul(wd).reshaped(inShape) : nil,
                weight.requiresGrad ? g2.transposed().matmul(xd.reshaped([rows, inF])) : nil,
            ]
            if bias != nil { grads.append(g2.sum(axes: [0])) }
            return grads
        }
    }
}
