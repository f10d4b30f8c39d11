//! The small dimension tables (campaigns, templates, tags, attributes) read
//! into an [`ObjectIndex`].

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::{parquet_schema, remote, validate, DataError, Expect};
use crate::check::ObjectIndex;
use crate::syntax::ast::ObjectKind;

/// Reads the dimension tables of a data directory. Absent tables are empty
/// (and the warnings that need them are not given).
pub fn load_objects(root: &Path) -> Result<ObjectIndex, DataError> {
    let remote = remote::url_of(root).is_some();
    if remote {
        // One listing says which tables there are (and errs for a missing
        // bucket or refused credentials).
        let listed = remote::Object::at(root)?.listing()?;
        if listed.is_empty() {
            return Err(DataError::new(format!(
                "{}: no objects under this prefix",
                root.display()
            )));
        }
    } else if !root.is_dir() {
        return Err(DataError::new(format!(
            "{}: not a directory",
            root.display()
        )));
    }
    let present = |path: &Path| match remote {
        true => remote::exists(path),
        false => Ok(path.is_file()),
    };
    let mut index = ObjectIndex::default();
    for (kind, file, id_col) in [
        (ObjectKind::Campaign, "campaigns.parquet", "campaign_id"),
        (ObjectKind::Template, "templates.parquet", "template_id"),
    ] {
        let path = remote::join(root, file);
        if !present(&path)? {
            continue;
        }
        let objects = index.of_mut(kind);
        let ids = objects.ids.get_or_insert_with(Default::default);
        for batch in read(
            &path,
            &[
                (id_col, Expect::Int64, true),
                ("name", Expect::String, true),
            ],
        )? {
            let (id, name) = (ints(&batch, 0), strings(&path, &batch, 1)?);
            for row in 0..batch.num_rows() {
                if id.is_null(row) {
                    continue;
                }
                let id = id.value(row);
                ids.insert(id);
                if !name.is_null(row) {
                    objects
                        .names
                        .entry(name.value(row).to_string())
                        .or_default()
                        .insert(id);
                }
            }
        }
    }

    let tags = remote::join(root, "tags.parquet");
    if present(&tags)? {
        index.has_tags = true;
        let columns = [
            ("object", Expect::String, true),
            ("object_id", Expect::Int64, true),
            ("tag", Expect::String, true),
        ];
        for batch in read(&tags, &columns)? {
            let (object, id, tag) = (
                strings(&tags, &batch, 0)?,
                ints(&batch, 1),
                strings(&tags, &batch, 2)?,
            );
            for row in 0..batch.num_rows() {
                if object.is_null(row) || id.is_null(row) || tag.is_null(row) {
                    continue;
                }
                if let Some(kind) = kind_of(object.value(row)) {
                    index
                        .of_mut(kind)
                        .tags
                        .entry(tag.value(row).to_string())
                        .or_default()
                        .insert(id.value(row));
                }
            }
        }
    }

    let attributes = remote::join(root, "attributes.parquet");
    if present(&attributes)? {
        index.has_attributes = true;
        let columns = [
            ("object", Expect::String, true),
            ("object_id", Expect::Int64, true),
            ("key", Expect::String, true),
            ("value", Expect::String, true),
        ];
        for batch in read(&attributes, &columns)? {
            let object = strings(&attributes, &batch, 0)?;
            let id = ints(&batch, 1);
            let key = strings(&attributes, &batch, 2)?;
            let value = strings(&attributes, &batch, 3)?;
            for row in 0..batch.num_rows() {
                if object.is_null(row) || id.is_null(row) || key.is_null(row) || value.is_null(row)
                {
                    continue;
                }
                if let Some(kind) = kind_of(object.value(row)) {
                    index
                        .of_mut(kind)
                        .attributes
                        .entry(key.value(row).to_string())
                        .or_default()
                        .entry(value.value(row).to_string())
                        .or_default()
                        .insert(id.value(row));
                }
            }
        }
    }
    Ok(index)
}

fn kind_of(object: &str) -> Option<ObjectKind> {
    match object {
        "campaign" => Some(ObjectKind::Campaign),
        "template" => Some(ObjectKind::Template),
        _ => None,
    }
}

/// Reads the named columns of a small Parquet file, validated, in that order.
fn read(path: &Path, columns: &[(&str, Expect, bool)]) -> Result<Vec<RecordBatch>, DataError> {
    let schema = parquet_schema(path)?;
    validate(path, &schema, columns)?;
    let io = |e: &dyn std::fmt::Display| DataError::new(format!("{}: {e}", path.display()));
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(super::open(path)?).map_err(|e| io(&e))?;
    let indices: Vec<usize> = columns
        .iter()
        .filter_map(|(name, _, _)| builder.schema().index_of(name).ok())
        .collect();
    let mask = datafusion::parquet::arrow::ProjectionMask::roots(builder.parquet_schema(), indices);
    let reader = builder.with_projection(mask).build().map_err(|e| io(&e))?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| io(&e))?;
        // Back to the requested column order, integers widened to int64.
        let mut fields = Vec::new();
        let mut arrays = Vec::new();
        for (name, expect, _) in columns {
            let Ok(i) = batch.schema().index_of(name) else {
                continue;
            };
            let mut array = Arc::clone(batch.column(i));
            if *expect == Expect::Int64 {
                array = super::widen(&array).map_err(|e| io(&format!("column `{name}`: {e}")))?;
            }
            fields.push(Field::new(*name, array.data_type().clone(), true));
            arrays.push(array);
        }
        let schema = Arc::new(Schema::new(fields));
        out.push(RecordBatch::try_new(schema, arrays).map_err(|e| io(&e))?);
    }
    Ok(out)
}

fn ints(batch: &RecordBatch, i: usize) -> &datafusion::arrow::array::PrimitiveArray<Int64Type> {
    batch.column(i).as_primitive::<Int64Type>()
}

fn strings(
    path: &Path,
    batch: &RecordBatch,
    i: usize,
) -> Result<datafusion::arrow::array::StringArray, DataError> {
    let array = super::cast_strictly(batch.column(i), &DataType::Utf8).map_err(|e| {
        let name = batch.schema_ref().field(i).name().clone();
        DataError::new(format!("{}: column `{name}`: {e}", path.display()))
    })?;
    Ok(array.as_string::<i32>().clone())
}
