//! TODO: implement (placeholder answering -1 until then).

use super::Call;
use crate::envelope::ApiErr;
use crate::world::World;
use serde_json::Value;

pub fn openuserid_to_userid(_w: &mut World, _call: &Call) -> Result<Value, ApiErr> {
    Err(ApiErr::new(-1))
}

pub fn userid_to_openuserid(_w: &mut World, _call: &Call) -> Result<Value, ApiErr> {
    Err(ApiErr::new(-1))
}
