"""The service's endpoints, one `APIRouter` per concern; `api.app` includes them all."""
