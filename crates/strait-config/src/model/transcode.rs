//! The `grpc_transcode` route action: JSON over HTTP answered by calling a gRPC service
//! (Envoy's `grpc_json_transcoder`, Kong's `grpc-gateway`).

use serde::Deserialize;

use crate::units::ByteSize;

/// JSON requests turned into gRPC calls to a cluster, by the `google.api.http` rules of a
/// descriptor set; the answers come back as JSON.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GrpcTranscode {
    /// The cluster called; it must speak HTTP/2 (`protocol: http2`).
    pub cluster: String,
    /// A binary `FileDescriptorSet` (`protoc --include_imports --descriptor_set_out=FILE`),
    /// relative to the configuration file's directory.
    pub descriptor_set: String,
    /// Fully qualified names of the services transcoded (`pkg.Service`).
    pub services: Vec<String>,
    /// How answers are written as JSON.
    #[serde(default)]
    pub print_options: PrintOptions,
    /// Query parameters that name no field of the request message are ignored instead of
    /// refused with 400.
    #[serde(default)]
    pub ignore_unknown_query_parameters: bool,
    /// A request that matches no binding of the services is forwarded to the cluster as it
    /// is instead of answered with 404 (Envoy passes such requests through).
    #[serde(default)]
    pub pass_through_unmatched: bool,
    /// Request fields sent to the service as gRPC metadata; `grpc-metadata-NAME` fields are
    /// always sent, as `NAME`.
    #[serde(default = "default_metadata_headers")]
    pub forward_headers: Vec<String>,
    /// Largest JSON request body read.
    #[serde(default = "default_message_limit")]
    pub max_request_bytes: ByteSize,
    /// Largest gRPC answer read (all messages of a stream together).
    #[serde(default = "default_message_limit")]
    pub max_response_bytes: ByteSize,
}

/// JSON printing of answers (Envoy's `print_options`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PrintOptions {
    /// Indent the JSON.
    pub add_whitespace: bool,
    /// Print fields that hold their default value (`0`, `""`, `false`, empty lists).
    pub always_print_primitive_fields: bool,
    /// Print enums as numbers instead of names.
    pub always_print_enums_as_ints: bool,
    /// Use the `.proto` field names (`user_id`) instead of lowerCamelCase JSON names.
    pub preserve_proto_field_names: bool,
    /// Answer server streams as one JSON message per line (`application/x-ndjson`) instead
    /// of one JSON array.
    pub stream_newline_delimited: bool,
}

fn default_metadata_headers() -> Vec<String> {
    vec!["authorization".into(), "x-request-id".into()]
}

fn default_message_limit() -> ByteSize {
    ByteSize(4 << 20)
}
