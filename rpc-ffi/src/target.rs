//! The `target` text `rpc_connect` takes: an endpoint (`unix:/path`, `tcp:127.0.0.1:PORT`), or
//! the name of a server in a runtime directory.

use std::path::PathBuf;

use rpc_client::{Connector, Target};
use rpc_core::{Endpoint, ServerLocation};

use crate::status::{Failure, RPC_ERR_INVALID_ARGUMENT};

/// A connector for `target`: text starting `unix:` or `tcp:` is an endpoint (a TCP one takes its
/// token from `RPC_TOKEN`), anything else a server name, looked up in `runtime_dir` (the
/// default runtime directory when `None`).
pub(crate) fn connector(target: &str, runtime_dir: Option<&str>) -> Result<Connector, Failure> {
    let invalid =
        |err: &(dyn std::error::Error + 'static)| Failure::error(RPC_ERR_INVALID_ARGUMENT, err);
    if target.starts_with("unix:") || target.starts_with("tcp:") {
        let endpoint = target.parse::<Endpoint>().map_err(|err| invalid(&err))?;
        return Connector::endpoint(endpoint).map_err(|err| invalid(&err));
    }
    let location = ServerLocation::new(runtime_dir.map(PathBuf::from), target).map_err(|err| {
        Failure::new(
            RPC_ERR_INVALID_ARGUMENT,
            format!(
                "{err} (a target is a server name, or an endpoint unix:/PATH or tcp:127.0.0.1:PORT)"
            ),
        )
    })?;
    Ok(Connector::new(Target::Name(location)))
}
