//! `_core.BlockIndex`, `_core.query_boxes`, `_core.scan_boxes`, `_core.nearest` and
//! `_core.linear_accept`: box queries (of a `_core.BoxSet`), top-k and linear scans.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clipbranches_index::{
    BlockIndex, BuildOptions, DEFAULT_BLOCK_ITEMS, Hits, IndexError, Method, linear, method, scan, topk,
};
use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::prelude::*;

use crate::boxes::PyBoxSet;
use crate::detached;
use crate::errors::ToPyErr;

/// `(rows, box_counts, group_counts)` as numpy arrays.
type HitArrays<'py> = (Bound<'py, PyArray1<u32>>, Bound<'py, PyArray1<u16>>, Bound<'py, PyArray1<u16>>);

/// `(rows, scores)` a linear scan accepted.
type Accepted<'py> = (Bound<'py, PyArray1<u32>>, Bound<'py, PyArray1<f32>>);

/// `(distances, rows)` of a top-k search.
type Neighbours<'py> = (Bound<'py, PyArray2<u32>>, Bound<'py, PyArray2<u64>>);

fn codes_slice<'a>(codes: &'a PyReadonlyArray2<'_, u8>) -> PyResult<&'a [u8]> {
    codes.as_slice().map_err(|_| IndexError::InvalidQuery("codes must be C-contiguous".into()).to_pyerr())
}

fn hit_arrays(py: Python<'_>, hits: Hits) -> HitArrays<'_> {
    (hits.rows.into_pyarray(py), hits.box_counts.into_pyarray(py), hits.group_counts.into_pyarray(py))
}

/// A block index over a catalog's codes (the state behind `clipbranches.Index`).
#[pyclass(name = "BlockIndex", module = "clipbranches._core", frozen)]
pub struct PyBlockIndex {
    pub(crate) inner: Arc<BlockIndex>,
}

#[pymethods]
impl PyBlockIndex {
    /// Builds an index over `(n, dim)` uint8 codes (in parallel, interpreter released).
    #[staticmethod]
    #[pyo3(signature = (codes, codes_checksum, block_items = DEFAULT_BLOCK_ITEMS))]
    fn build(
        py: Python<'_>,
        codes: PyReadonlyArray2<'_, u8>,
        codes_checksum: &str,
        block_items: usize,
    ) -> PyResult<Self> {
        let dim = codes.shape()[1];
        let bytes = codes_slice(&codes)?;
        let inner = detached(py, || BlockIndex::build(bytes, dim, codes_checksum, BuildOptions { block_items }))?;
        Ok(Self { inner: Arc::new(inner) })
    }

    /// Maps the index file at `path`, checking it and that it belongs to `codes_checksum`
    /// (and, when given, that it indexes `count` items of width `dim`).
    #[staticmethod]
    #[pyo3(signature = (path, codes_checksum, count = None, dim = None))]
    fn open(
        py: Python<'_>,
        path: PathBuf,
        codes_checksum: &str,
        count: Option<usize>,
        dim: Option<usize>,
    ) -> PyResult<Self> {
        let inner = detached(py, || match (count, dim) {
            (Some(count), Some(dim)) => BlockIndex::open_for(&path, codes_checksum, count, dim),
            _ => BlockIndex::open(&path, codes_checksum),
        })?;
        Ok(Self { inner: Arc::new(inner) })
    }

    /// Writes the index to `path` atomically. With `catalog = (dir, st_dev, st_ino)`, the
    /// directory `dir` must still be that inode just before the rename that installs the index
    /// (else `CatalogChangedError`, nothing installed): an index is written only into the
    /// catalog it was built from.
    #[pyo3(signature = (path, catalog = None))]
    fn save(&self, py: Python<'_>, path: PathBuf, catalog: Option<(PathBuf, u64, u64)>) -> PyResult<()> {
        use std::os::unix::fs::MetadataExt;
        let changed = AtomicBool::new(false);
        let still_ours = || -> Result<(), IndexError> {
            let Some((dir, dev, ino)) = &catalog else { return Ok(()) };
            let same = std::fs::metadata(dir).is_ok_and(|m| m.dev() == *dev && m.ino() == *ino);
            if same {
                Ok(())
            } else {
                changed.store(true, Ordering::Relaxed);
                Err(IndexError::InvalidArgument(format!(
                    "{}: the catalog was replaced on disk after this handle opened it; the index built from \
                     the old one was not installed (open the catalog again and rebuild)",
                    dir.display()
                )))
            }
        };
        match detached(py, || self.inner.save_checked(&path, &still_ours)) {
            Err(err) if changed.load(Ordering::Relaxed) => {
                let class = py.import("clipbranches.exceptions")?.getattr("CatalogChangedError")?;
                Err(PyErr::from_value(class.call1((err.value(py).str()?,))?))
            }
            other => other,
        }
    }

    /// Number of items indexed.
    #[getter]
    fn count(&self) -> usize {
        self.inner.count()
    }

    /// Code width.
    #[getter]
    fn dim(&self) -> usize {
        self.inner.dim()
    }

    /// Items per block.
    #[getter]
    fn block_items(&self) -> usize {
        self.inner.block_items()
    }

    /// Size in bytes.
    #[getter]
    fn nbytes(&self) -> usize {
        self.inner.bytes()
    }

    /// BLAKE3 of the catalog codes the index was built for.
    #[getter]
    fn codes_checksum(&self) -> String {
        self.inner.codes_checksum().to_string()
    }

    /// Predicted single-thread cost `(index_ns, scan_ns)` of a query (see `QueryCost`).
    fn estimate(&self, boxes: PyRef<'_, PyBoxSet>) -> PyResult<(f64, f64)> {
        let query = boxes.inner.query_for(self.inner.dim()).map_err(ToPyErr::to_pyerr)?;
        let cost = self.inner.estimate(&query);
        Ok((cost.index_ns, cost.scan_ns))
    }

    /// Every item inside at least one box: `(rows, box_counts, group_counts)`, in index order.
    fn query_boxes<'py>(&self, py: Python<'py>, boxes: PyRef<'py, PyBoxSet>) -> PyResult<HitArrays<'py>> {
        let query = boxes.inner.query_for(self.inner.dim()).map_err(ToPyErr::to_pyerr)?;
        let hits = detached(py, || self.inner.query(&query))?;
        Ok(hit_arrays(py, hits))
    }
}

/// The fused scan of row-major `(n, dim)` codes: same answer as `BlockIndex.query_boxes`.
#[pyfunction]
pub fn scan_boxes<'py>(
    py: Python<'py>,
    codes: PyReadonlyArray2<'py, u8>,
    boxes: PyRef<'py, PyBoxSet>,
) -> PyResult<HitArrays<'py>> {
    let query = boxes.inner.query_for(codes.shape()[1]).map_err(ToPyErr::to_pyerr)?;
    let bytes = codes_slice(&codes)?;
    let hits = detached(py, || scan::query(bytes, &query))?;
    Ok(hit_arrays(py, hits))
}

/// A catalog's box query in one call: over its row-major `(n, dim)` codes and, if given, its
/// index, by `method` ("auto": the scan without an index, else the engine the index's cost
/// model predicts to be faster; "index"; "scan").
#[pyfunction]
#[pyo3(signature = (codes, index, boxes, method = "auto"))]
pub fn query_boxes<'py>(
    py: Python<'py>,
    codes: PyReadonlyArray2<'py, u8>,
    index: Option<PyRef<'py, PyBlockIndex>>,
    boxes: PyRef<'py, PyBoxSet>,
    method: &str,
) -> PyResult<HitArrays<'py>> {
    let method: Method = method.parse().map_err(ToPyErr::to_pyerr)?;
    let query = boxes.inner.query_for(codes.shape()[1]).map_err(ToPyErr::to_pyerr)?;
    let bytes = codes_slice(&codes)?;
    let index = index.as_ref().map(|i| &*i.inner);
    let hits = detached(py, || method::query(bytes, index, &query, method))?;
    Ok(hit_arrays(py, hits))
}

/// Exact top-`k` by squared L2: `(distances uint32 (m, k), rows uint64 (m, k))`.
#[pyfunction]
pub fn nearest<'py>(
    py: Python<'py>,
    codes: PyReadonlyArray2<'py, u8>,
    queries: PyReadonlyArray2<'py, u8>,
    k: usize,
) -> PyResult<Neighbours<'py>> {
    let dim = codes.shape()[1];
    if queries.shape()[1] != dim {
        return Err(
            IndexError::Dimension(format!("queries have {} columns, the codes {dim}", queries.shape()[1])).to_pyerr()
        );
    }
    let m = queries.shape()[0];
    let (bytes, q) = (codes_slice(&codes)?, codes_slice(&queries)?);
    let (d, rows) = detached(py, || topk::nearest(bytes, dim, q, k))?;
    let d = Array2::from_shape_vec((m, k), d).expect("m x k distances");
    let rows = Array2::from_shape_vec((m, k), rows).expect("m x k rows");
    Ok((d.into_pyarray(py), rows.into_pyarray(py)))
}

/// Rows whose linear score `weights · code + bias` is above `threshold`, ascending:
/// `(rows uint32, scores float32)`.
#[pyfunction]
pub fn linear_accept<'py>(
    py: Python<'py>,
    codes: PyReadonlyArray2<'py, u8>,
    weights: PyReadonlyArray1<'py, f32>,
    bias: f32,
    threshold: f32,
) -> PyResult<Accepted<'py>> {
    let dim = codes.shape()[1];
    let bytes = codes_slice(&codes)?;
    let w =
        weights.as_slice().map_err(|_| IndexError::InvalidArgument("weights must be contiguous".into()).to_pyerr())?;
    let (rows, scores) = detached(py, || linear::accept(bytes, dim, w, bias, threshold))?;
    Ok((rows.into_pyarray(py), scores.into_pyarray(py)))
}
