// rate-limit module entry: the ABI exports plus root registration, nothing else.
import { registerRoot, RootContext } from "../shared/context";
import { RateLimitRoot } from "./root";

export * from "../shared/exports";

registerRoot((id: u32): RootContext => new RateLimitRoot(id));
