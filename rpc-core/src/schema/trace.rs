//! [`SchemaBuilder`]: a [`ServiceSchema`] traced from Rust types with serde-reflection.
//!
//! Each argument and result type is traced on its own, by a fresh tracer, because serde names
//! every `Result<T, E>` "Result": traced together, `Result<Note, NotesError>` and
//! `Result<(), String>` would be taken for one type. A traced `Result` becomes [`Type::Result`],
//! inline; every other struct and enum becomes a [`TypeDef`] in the schema's `types`, and two
//! different types that serde names alike are refused with [`SchemaError::Conflict`].
//!
//! serde-reflection learns an enum's variants one pass at a time, and only for the enum it was
//! asked to trace: an enum reached through a struct field stays half-known. So every type that
//! appears in a method's signature (the `Note` and `NotesError` of `Result<Note, NotesError>`)
//! is traced on its own first, as a [`SchemaBuilder::root`], in every tracer;
//! `#[rpc_core::service]` does that for each type it sees in a signature, and an enum nested
//! deeper is named in its `trace = [...]` list. One that is not gets [`SchemaError::Incomplete`],
//! which says so.

use std::collections::BTreeMap;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_reflection::{
    ContainerFormat, Format, Named, Registry, Samples, Tracer, TracerConfig, VariantFormat,
};

use super::{Field, MethodSchema, ServiceSchema, Shape, Type, TypeDef, Variant};

/// Why a service's schema could not be traced: a bug in the service's types, found when the
/// server starts (or a test runs), never on the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// serde-reflection could not trace a type, e.g. one whose `Deserialize` validates its input.
    #[error(
        "cannot trace `{ty}` for service `{service}`: {reason} (a type whose Deserialize validates its input needs a sample: #[rpc_core::service(samples = [...])])"
    )]
    Trace {
        /// The service.
        service: String,
        /// The Rust type being traced.
        ty: &'static str,
        /// serde-reflection's error.
        reason: String,
    },
    /// An enum whose variants were not all seen: one nested inside a struct.
    #[error(
        "cannot learn every variant of {names} for service `{service}`: an enum used inside a struct must be traced on its own: #[rpc_core::service(trace = [{names}])]"
    )]
    Incomplete {
        /// The service.
        service: String,
        /// The enums, comma-separated.
        names: String,
    },
    /// Two different types that serde names alike.
    #[error(
        "service `{service}` uses two different types named `{name}`: rename one (#[serde(rename = \"...\")])"
    )]
    Conflict {
        /// The service.
        service: String,
        /// The name they share.
        name: String,
    },
}

/// Records a sample, or traces a root type, in a fresh tracer.
type SampleFn = Box<dyn Fn(&mut Tracer, &mut Samples) -> serde_reflection::Result<()> + Send>;

/// Builds a [`ServiceSchema`] method by method: what `#[rpc_core::service]` generates calls to.
///
/// ```
/// use rpc_core::schema::{SchemaBuilder, Type};
///
/// # fn main() -> Result<(), rpc_core::schema::SchemaError> {
/// let mut builder = SchemaBuilder::new("kv");
/// let key = builder.trace::<String>()?;
/// let result = builder.trace::<Option<String>>()?;
/// builder.method("get", "The value at `key`.", vec![("key", key)], result);
/// let schema = builder.finish();
/// assert_eq!(schema.methods[0].result, Type::Option(Box::new(Type::Str)));
/// # Ok(()) }
/// ```
pub struct SchemaBuilder {
    service: String,
    samples: Vec<SampleFn>,
    methods: Vec<MethodSchema>,
    types: BTreeMap<String, TypeDef>,
}

impl std::fmt::Debug for SchemaBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaBuilder")
            .field("service", &self.service)
            .field("methods", &self.methods.len())
            .finish_non_exhaustive()
    }
}

impl SchemaBuilder {
    /// A builder for the service hosted as `service`.
    pub fn new(service: &str) -> Self {
        SchemaBuilder {
            service: service.to_owned(),
            samples: Vec::new(),
            methods: Vec::new(),
            types: BTreeMap::new(),
        }
    }

    /// Gives the tracer a value of a type whose `Deserialize` validates its input (an
    /// [`Endpoint`](crate::Endpoint) parsed from a string, say), so it is traced from this
    /// value's serialization instead of from made-up input. Call it before [`Self::trace`].
    pub fn sample<T: Serialize + Clone + Send + 'static>(&mut self, value: T) -> &mut Self {
        self.samples.push(Box::new(move |tracer, samples| {
            tracer.trace_value(samples, &value).map(|_| ())
        }));
        self
    }

    /// Traces `T` on its own, first, in every tracer: an enum nested inside a struct is then
    /// known whole when the struct is traced. Call it before [`Self::trace`].
    pub fn root<T: DeserializeOwned>(&mut self) -> &mut Self {
        self.samples.push(Box::new(|tracer, samples| {
            tracer.trace_type::<T>(samples).map(|_| ())
        }));
        self
    }

    /// Traces `T`: its [`Type`], with every struct and enum in it added to the schema.
    pub fn trace<T: DeserializeOwned>(&mut self) -> Result<Type, SchemaError> {
        let error = |reason: serde_reflection::Error| SchemaError::Trace {
            service: self.service.clone(),
            ty: std::any::type_name::<T>(),
            reason: reason.to_string(),
        };
        let config = TracerConfig::default()
            .record_samples_for_structs(true)
            .record_samples_for_newtype_structs(true)
            .record_samples_for_tuple_structs(true);
        let mut tracer = Tracer::new(config);
        let mut samples = Samples::new();
        for sample in &self.samples {
            sample(&mut tracer, &mut samples).map_err(error)?;
        }
        let (format, _) = tracer.trace_type::<T>(&samples).map_err(error)?;
        let registry = tracer.registry().map_err(|err| match err {
            serde_reflection::Error::MissingVariants(names) => SchemaError::Incomplete {
                service: self.service.clone(),
                names: names.join(", "),
            },
            other => error(other),
        })?;
        let convert = Convert {
            registry: &registry,
        };
        let ty = convert.format(&format).map_err(error)?;
        for (name, container) in &registry {
            if convert.as_result(name).is_some() {
                continue;
            }
            let def = convert.container(container).map_err(error)?;
            match self.types.get(name) {
                Some(known) if *known != def => {
                    return Err(SchemaError::Conflict {
                        service: self.service.clone(),
                        name: name.clone(),
                    });
                }
                Some(_) => {}
                None => {
                    self.types.insert(name.clone(), def);
                }
            }
        }
        Ok(ty)
    }

    /// Adds the next method, in wire order: its name as declared, its doc comment, its
    /// arguments (names and traced types) and its traced result type.
    pub fn method(&mut self, name: &str, doc: &str, args: Vec<(&str, Type)>, result: Type) {
        self.add_method(name, doc, args, result, false);
    }

    /// Adds the next method, in wire order, as [`SchemaBuilder::method`] does, for a streaming
    /// method: `item` is the type of its items.
    pub fn streaming_method(&mut self, name: &str, doc: &str, args: Vec<(&str, Type)>, item: Type) {
        self.add_method(name, doc, args, item, true);
    }

    fn add_method(
        &mut self,
        name: &str,
        doc: &str,
        args: Vec<(&str, Type)>,
        result: Type,
        streaming: bool,
    ) {
        self.methods.push(MethodSchema {
            name: name.to_owned(),
            args: args
                .into_iter()
                .map(|(name, ty)| Field {
                    name: name.to_owned(),
                    ty,
                })
                .collect(),
            result,
            streaming,
            doc: doc.trim().to_owned(),
        });
    }

    /// The schema.
    pub fn finish(self) -> ServiceSchema {
        ServiceSchema {
            name: self.service,
            methods: self.methods,
            types: self.types,
        }
    }
}

/// From serde-reflection's formats to [`Type`] and [`TypeDef`], with `Result` inlined.
struct Convert<'a> {
    registry: &'a Registry,
}

impl Convert<'_> {
    /// The `Ok` and `Err` formats, if the container named `name` is a `Result`.
    fn as_result(&self, name: &str) -> Option<(&Format, &Format)> {
        if name != "Result" {
            return None;
        }
        let ContainerFormat::Enum(variants) = self.registry.get(name)? else {
            return None;
        };
        match (variants.get(&0), variants.get(&1), variants.len()) {
            (
                Some(Named {
                    name: ok_name,
                    value: VariantFormat::NewType(ok),
                }),
                Some(Named {
                    name: err_name,
                    value: VariantFormat::NewType(err),
                }),
                2,
            ) if ok_name == "Ok" && err_name == "Err" => Some((ok, err)),
            _ => None,
        }
    }

    fn format(&self, format: &Format) -> serde_reflection::Result<Type> {
        let boxed = |format: &Format| self.format(format).map(Box::new);
        Ok(match format {
            Format::Variable(_) => return Err(serde_reflection::Error::UnknownFormat),
            Format::TypeName(name) => match self.as_result(name) {
                Some((ok, err)) => Type::Result {
                    ok: boxed(ok)?,
                    err: boxed(err)?,
                },
                None => Type::Named(name.clone()),
            },
            Format::Unit => Type::Unit,
            Format::Bool => Type::Bool,
            Format::I8 => Type::I8,
            Format::I16 => Type::I16,
            Format::I32 => Type::I32,
            Format::I64 => Type::I64,
            Format::I128 => Type::I128,
            Format::U8 => Type::U8,
            Format::U16 => Type::U16,
            Format::U32 => Type::U32,
            Format::U64 => Type::U64,
            Format::U128 => Type::U128,
            Format::F32 => Type::F32,
            Format::F64 => Type::F64,
            Format::Char => Type::Char,
            Format::Str => Type::Str,
            Format::Bytes => Type::Bytes,
            Format::Option(inner) => Type::Option(boxed(inner)?),
            Format::Seq(inner) => Type::Seq(boxed(inner)?),
            Format::Map { key, value } => Type::Map {
                key: boxed(key)?,
                value: boxed(value)?,
            },
            Format::Tuple(items) => Type::Tuple(self.formats(items)?),
            Format::TupleArray { content, size } => Type::Array {
                item: boxed(content)?,
                len: *size as u64,
            },
        })
    }

    fn formats(&self, formats: &[Format]) -> serde_reflection::Result<Vec<Type>> {
        formats.iter().map(|f| self.format(f)).collect()
    }

    fn fields(&self, fields: &[Named<Format>]) -> serde_reflection::Result<Vec<Field>> {
        fields
            .iter()
            .map(|field| {
                Ok(Field {
                    name: field.name.clone(),
                    ty: self.format(&field.value)?,
                })
            })
            .collect()
    }

    fn container(&self, container: &ContainerFormat) -> serde_reflection::Result<TypeDef> {
        Ok(match container {
            ContainerFormat::UnitStruct => TypeDef::Struct(Shape::Unit),
            ContainerFormat::NewTypeStruct(inner) => {
                TypeDef::Struct(Shape::Newtype(self.format(inner)?))
            }
            ContainerFormat::TupleStruct(items) => {
                TypeDef::Struct(Shape::Tuple(self.formats(items)?))
            }
            ContainerFormat::Struct(fields) => TypeDef::Struct(Shape::Struct(self.fields(fields)?)),
            ContainerFormat::Enum(variants) => TypeDef::Enum(
                variants
                    .iter()
                    .map(|(index, variant)| {
                        Ok(Variant {
                            index: *index,
                            name: variant.name.clone(),
                            shape: self.variant(&variant.value)?,
                        })
                    })
                    .collect::<serde_reflection::Result<_>>()?,
            ),
        })
    }

    fn variant(&self, variant: &VariantFormat) -> serde_reflection::Result<Shape> {
        Ok(match variant {
            VariantFormat::Variable(_) => return Err(serde_reflection::Error::UnknownFormat),
            VariantFormat::Unit => Shape::Unit,
            VariantFormat::NewType(inner) => Shape::Newtype(self.format(inner)?),
            VariantFormat::Tuple(items) => Shape::Tuple(self.formats(items)?),
            VariantFormat::Struct(fields) => Shape::Struct(self.fields(fields)?),
        })
    }
}
