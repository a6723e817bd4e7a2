/**
 * The errors the Python package raises for the same conditions (`timestep.errors`), with the
 * same names, so that both languages can be handled alike.
 */

/** Base class of every Timestep error. */
export class TimestepError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** The session has no saved state (or none with the given id). */
export class StateNotFoundError extends TimestepError {}

/** The state belongs to an agent that is neither the store's agent nor one of its handoffs. */
export class StateAgentMismatchError extends TimestepError {}

/** The serialized state is over TIMESTEP_MAX_STATE_BYTES. */
export class StateTooLargeError extends TimestepError {}

/** The state's `$schemaVersion` is not one this SDK reads. */
export class UnsupportedSchemaVersionError extends TimestepError {}

/** The payload is not a RunState this SDK can load. */
export class MalformedStateError extends TimestepError {}

/** The database or the environment is not set up for Timestep. */
export class ConfigurationError extends TimestepError {}
