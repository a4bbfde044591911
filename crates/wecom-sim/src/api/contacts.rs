//! TODO: implement (placeholder answering -1 until then).

use super::Call;
use crate::envelope::ApiErr;
use crate::world::World;
use serde_json::Value;

pub fn department_list(_w: &mut World, _call: &Call) -> Result<Value, ApiErr> {
    Err(ApiErr::new(-1))
}

pub fn department_simplelist(_w: &mut World, _call: &Call) -> Result<Value, ApiErr> {
    Err(ApiErr::new(-1))
}

pub fn department_get(_w: &mut World, _call: &Call) -> Result<Value, ApiErr> {
    Err(ApiErr::new(-1))
}

pub fn user_get(_w: &mut World, _call: &Call) -> Result<Value, ApiErr> {
    Err(ApiErr::new(-1))
}

pub fn user_list(_w: &mut World, _call: &Call) -> Result<Value, ApiErr> {
    Err(ApiErr::new(-1))
}

pub fn user_simplelist(_w: &mut World, _call: &Call) -> Result<Value, ApiErr> {
    Err(ApiErr::new(-1))
}

pub fn user_list_id(_w: &mut World, _call: &Call) -> Result<Value, ApiErr> {
    Err(ApiErr::new(-1))
}

pub fn tag_list(_w: &mut World, _call: &Call) -> Result<Value, ApiErr> {
    Err(ApiErr::new(-1))
}

pub fn tag_get(_w: &mut World, _call: &Call) -> Result<Value, ApiErr> {
    Err(ApiErr::new(-1))
}
