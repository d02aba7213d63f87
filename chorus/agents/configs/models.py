"""Pydantic models of the bot config (seed 001 §7 and §6 plus Chorus additions).

These models are the source of `configs/schema/bot.schema.json`; `chorus config schema` regenerates
it and a test keeps the two identical. Keys starting with "_" are comments and are allowed anywhere.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ToolStatus = Literal["implemented", "missing", "in_progress"]
ProductType = Literal["chatbot", "voicebot"]
Provider = Literal["openai", "openai_compatible", "anthropic", "offline"]


def _comment_keys_only(schema: dict[str, Any]) -> None:
    schema["additionalProperties"] = False
    schema["patternProperties"] = {"^_": {}}


class ConfigModel(BaseModel):
    """Unknown keys are errors (they are usually typos); keys starting with "_" are comments."""

    model_config = ConfigDict(extra="allow", json_schema_extra=_comment_keys_only)

    @model_validator(mode="after")
    def _only_comment_extras(self) -> ConfigModel:
        unknown = [k for k in (self.model_extra or {}) if not k.startswith("_")]
        if unknown:
            raise ValueError(f"unknown field(s): {', '.join(sorted(unknown))}")
        return self


class ConfigMetadata(ConfigModel):
    config_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$",
        description="The bot's id in its tenant (letters, digits, _ . : -): uploading the file again makes a new "
        "version of the same bot. Without one, Chorus generates it.",
    )
    product_type: ProductType
    client_id: str | None = None
    name: str | None = Field(default=None, description="Display name; defaults to system_prompt.role.")
    description: str | None = None
    version: int | None = None
    environment: str | None = None
    created_at: datetime | None = None


class VoiceSpecific(ConfigModel):
    speaking_rate: Literal["slow", "normal", "fast"] | None = None
    interruption_sensitivity: Literal["low", "medium", "high"] | None = None
    silence_timeout_ms: Annotated[int, Field(ge=0, le=60000)] | None = None


class SystemPrompt(ConfigModel):
    role: str = Field(min_length=1)
    instructions: str = Field(min_length=1)
    constraints: list[str] = Field(default_factory=list)
    tone: str | None = None
    voice_specific: VoiceSpecific | None = None


class ToolAvailability(ConfigModel):
    tool_name: str = Field(min_length=1, pattern=r"^[A-Za-z_][A-Za-z0-9_\-]{0,63}$")
    status: ToolStatus
    github_issue: str | None = None


class HttpToolSpec(ConfigModel):
    method: Literal["GET", "POST"] = "GET"
    url: str = Field(pattern=r"^https?://", description="May contain {param} placeholders.")
    headers: dict[str, str] = Field(default_factory=dict)
    timeout_ms: Annotated[int, Field(ge=1, le=120000)] = 5000


class ToolNeeded(ConfigModel):
    tool_name: str = Field(min_length=1, pattern=r"^[A-Za-z_][A-Za-z0-9_\-]{0,63}$")
    description: str | None = None
    input_schema: dict[str, Any] = Field(
        default_factory=dict,
        description='JSON Schema of the arguments, or the shorthand {"field": "type"}.',
    )
    output_schema: dict[str, Any] | None = None
    http: HttpToolSpec | None = None
    metadata: dict[str, Any] | None = None


class Integration(ConfigModel):
    integration_name: str = Field(min_length=1)
    product_compatibility: list[ProductType] = Field(default_factory=list)
    type: str | None = None
    status: ToolStatus
    github_issue: str | None = None
    config: dict[str, Any] | None = None


class IntegrationNeeded(ConfigModel):
    integration_name: str = Field(min_length=1)
    purpose: str | None = None
    details: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None


class LlmParameters(ConfigModel):
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    max_tokens: Annotated[int, Field(ge=1, le=200000)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None


class LlmFallback(ConfigModel):
    provider: Provider
    model: str = Field(min_length=1)
    base_url: str | None = None
    api_key_env: str | None = None
    parameters: LlmParameters | None = None


class LlmConfig(ConfigModel):
    provider: Provider
    model: str = Field(min_length=1)
    base_url: str | None = Field(default=None, description="For OpenAI-compatible servers.")
    api_key_env: str | None = Field(default=None, description="Env var holding the key; default per provider.")
    parameters: LlmParameters = Field(default_factory=LlmParameters)
    fallback: LlmFallback | list[LlmFallback] | None = None
    offline_token_delay_ms: Annotated[int, Field(ge=0, le=5000)] | None = Field(
        default=None,
        description="Offline development model only: pause between streamed tokens (demos, multitask tests).",
    )

    def fallbacks(self) -> list[LlmFallback]:
        if self.fallback is None:
            return []
        return self.fallback if isinstance(self.fallback, list) else [self.fallback]


class DatabaseConfig(ConfigModel):
    type: str
    tables: list[str] = Field(default_factory=list)
    rls_enabled: bool | None = None


class VectorDbConfig(ConfigModel):
    type: str
    index_name: str | None = None
    namespace: str | None = None


class Feature(ConfigModel):
    enabled: bool = False


class PiiCollection(Feature):
    fields: list[str] = Field(default_factory=list)


class FollowupScheduling(Feature):
    channels: list[str] = Field(default_factory=list)
    triggers: list[str] = Field(default_factory=list)


class CrossSellUpsell(Feature):
    recommendation_engine: str | None = None
    max_suggestions: Annotated[int, Field(ge=0)] | None = None


class SurveyQuestions(Feature):
    questions: list[str] = Field(default_factory=list)


class EscalationTrigger(ConfigModel):
    condition: str = Field(min_length=1)
    action: str = Field(min_length=1)


class HumanEscalation(Feature):
    triggers: list[EscalationTrigger] = Field(default_factory=list)
    unavailable_action: str | None = None
    emergency_keywords: list[str] | None = None
    handoff_message: str | None = None


class RetargetingTrigger(ConfigModel):
    event: str
    channel: str | None = None
    template: str | None = None


class OutboundRetargeting(Feature):
    triggers: list[RetargetingTrigger] = Field(default_factory=list)


class TransferDestination(ConfigModel):
    name: str
    phone: str = Field(pattern=r"^\+?[0-9]{3,15}$")
    mode: Literal["cold", "warm"] = Field(
        default="cold",
        description="cold: the caller is handed over by SIP REFER; warm: the caller waits on hold while the "
        "person is called and briefed, then is connected (or comes back to the bot if no one takes the call).",
    )


class CallTransfer(Feature):
    transfer_destinations: list[TransferDestination] = Field(default_factory=list)


class Voicemail(Feature):
    max_duration_seconds: Annotated[int, Field(ge=1, le=3600)] | None = None
    transcription_enabled: bool | None = None
    message: str | None = Field(
        default=None,
        min_length=1,
        max_length=1000,
        description="Left on the callee's voicemail when an outbound call reaches one (answering-machine "
        "detection; when enabled). Without it, a call that reaches a machine hangs up without a message.",
    )


class OutboundCallingTrigger(ConfigModel):
    event: str
    template: str | None = None


class OutboundCalling(Feature):
    triggers: list[OutboundCallingTrigger] = Field(default_factory=list)


class WorkflowFeatures(ConfigModel):
    pii_collection: PiiCollection | None = None
    followup_scheduling: FollowupScheduling | None = None
    cross_sell_upsell: CrossSellUpsell | None = None
    survey_questions: SurveyQuestions | None = None
    human_escalation: HumanEscalation | None = None
    outbound_retargeting: OutboundRetargeting | None = None
    call_transfer: CallTransfer | None = None
    voicemail: Voicemail | None = None
    outbound_calling: OutboundCalling | None = None


class SipConfig(ConfigModel):
    primary_provider: str
    primary_endpoint: str = Field(pattern=r"^\+?[0-9]{3,15}$")
    failover_provider: str | None = None
    failover_endpoint: str | None = Field(default=None, pattern=r"^\+?[0-9]{3,15}$")
    inbound_calls_enabled: bool = True
    outbound_calls_enabled: bool = False
    call_recording: bool = False
    recording_retention_days: Annotated[int, Field(ge=0)] | None = None


class LivekitConfig(ConfigModel):
    room_prefix: str | None = None
    stt_provider: str | None = None
    stt_model: str | None = None
    stt_language: str | None = None
    tts_provider: str | None = None
    tts_voice_id: str | None = None
    tts_model: str | None = None
    vad_enabled: bool | None = None
    vad_threshold: Annotated[float, Field(ge=0, le=1)] | None = None


_SOUND_PATH = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*")


class BackgroundSound(ConfigModel):
    type: Literal["office", "off", "custom"] | None = Field(
        default=None, description="office: LiveKit's office ambience; off: none; custom: the file at custom_url."
    )
    custom_url: str | None = Field(
        default=None,
        min_length=1,
        description="An audio file in the voice worker's sounds folder (CHORUS_VOICE_SOUNDS_DIR), by its name there"
        " (type custom); nothing is downloaded at call time.",
    )

    @model_validator(mode="after")
    def _local_file_only(self) -> BackgroundSound:
        url = self.custom_url
        if url is not None and "://" in url:
            raise ValueError(
                f"custom_url '{url[:80]}' is a URL: Chorus downloads nothing at call time; copy the audio file "
                "to the voice worker and give its local path"
            )
        if url is not None and (not _SOUND_PATH.fullmatch(url) or ".." in url.split("/")):
            raise ValueError(
                f"custom_url '{url[:80]}' must be a file name (or a relative path without '..') in the voice "
                "worker's sounds folder (CHORUS_VOICE_SOUNDS_DIR), e.g. 'lobby.ogg'"
            )
        if self.type == "custom" and url is None:
            raise ValueError("type custom needs custom_url: the path of a local audio file on the voice worker")
        if url is not None and self.type not in (None, "custom"):
            raise ValueError(f"custom_url is only played with type custom (type is {self.type}): set type to custom")
        return self


class VoiceModelSettings(ConfigModel):
    model: str | None = None
    clarity_similarity: Annotated[float, Field(ge=0, le=1)] | None = None
    speed: Annotated[float, Field(gt=0, le=4)] | None = None
    style_exaggeration: Annotated[float, Field(ge=0, le=1)] | None = None
    optimize_streaming_latency: Annotated[int, Field(ge=0, le=4)] | None = None
    use_speaker_boost: bool | None = None
    auto_mode: bool | None = None


class StopSpeakingPlan(ConfigModel):
    number_of_words: Annotated[int, Field(ge=0)] | None = None
    voice_seconds: Annotated[float, Field(ge=0)] | None = None
    back_off_seconds: Annotated[float, Field(ge=0)] | None = None


class VoiceSettings(ConfigModel):
    background_sound: BackgroundSound | None = None
    input_min_characters: Annotated[int, Field(ge=0)] | None = None
    punctuation_boundaries: list[str] | None = None
    model_settings: VoiceModelSettings | None = None
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    stop_speaking_plan: StopSpeakingPlan | None = None


class AnalysisSummary(ConfigModel):
    enabled: bool = True
    prompt: str | None = Field(default=None, description="What the summary should say; a default prompt otherwise.")


_REFERENCES = ("$ref", "$dynamicRef", "$recursiveRef")


def _first_reference(schema: Any) -> str | None:
    """The first `$ref`-like keyword anywhere in `schema` (iterative: a schema nested deep cannot recurse)."""
    stack = [schema]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            for key in _REFERENCES:
                if key in value:
                    return key
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return None


class AnalysisStructuredData(ConfigModel):
    enabled: bool = True
    json_schema: dict[str, Any] = Field(
        description="A JSON Schema (draft 2020-12) of an object: the data the model fills from the call "
        '(e.g. {"type": "object", "properties": {"date": {"type": "string"}}}).',
    )
    prompt: str | None = None

    @model_validator(mode="after")
    def _valid_schema(self) -> AnalysisStructuredData:
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import SchemaError

        try:
            Draft202012Validator.check_schema(self.json_schema)
        except SchemaError as exc:
            where = "/".join(str(p) for p in exc.path)
            at = f" at {where}" if where else ""
            raise ValueError(f"json_schema is not a valid JSON Schema{at}: {exc.message}") from None
        if self.json_schema.get("type") != "object":
            raise ValueError('json_schema must describe an object: set "type": "object" and its "properties"')
        if (ref := _first_reference(self.json_schema)) is not None:
            raise ValueError(
                f"json_schema uses {ref}: references are not supported here (a remote one is never fetched, a "
                "recursive one never ends); write the definitions inline"
            )
        return self


class AnalysisSuccessEvaluation(ConfigModel):
    enabled: bool = True
    rubric: Literal["pass_fail", "numeric_scale", "descriptive_scale"] = Field(
        default="pass_fail",
        description="pass_fail: true or false; numeric_scale: 1 to 10; descriptive_scale: Excellent, Good, "
        "Fair or Poor.",
    )
    prompt: str | None = Field(default=None, description="What success means for this bot.")


class AnalysisPlan(ConfigModel):
    """What is worked out after each call with the config's model (Vapi's analysisPlan): a summary,
    structured data against a JSON Schema, a success evaluation. Stored on the call record."""

    summary: AnalysisSummary | None = None
    structured_data: AnalysisStructuredData | None = None
    success_evaluation: AnalysisSuccessEvaluation | None = None


class CallWebhook(ConfigModel):
    url: str = Field(
        pattern=r"^https?://",
        max_length=2000,
        description="Where each ended call (event call.ended: the record and its analysis) is POSTed, signed "
        "like run webhooks.",
    )


class KnowledgeConfig(ConfigModel):
    namespaces: list[str] = Field(default_factory=list)
    faq_namespace: str | None = None
    auto_answer_threshold: Annotated[float, Field(ge=0, le=1)] | None = None


_HEX_COLOR = r"^#(?:[0-9a-fA-F]{3}){1,2}$"


class WebchatColors(ConfigModel):
    primary: str | None = Field(default=None, pattern=_HEX_COLOR, description="Launcher, header, visitor bubbles.")
    background: str | None = Field(default=None, pattern=_HEX_COLOR)
    text: str | None = Field(default=None, pattern=_HEX_COLOR)


class Webchat(ConfigModel):
    """How the embeddable widget shows this bot (served by GET /widget/v1/config). Values are checked
    strictly because any web page that embeds the widget renders them."""

    title: str | None = Field(default=None, min_length=1, max_length=80, description="Header; defaults to the name.")
    greeting: str | None = Field(
        default=None, min_length=1, max_length=1000, description="First message shown; defaults to first_message."
    )
    colors: WebchatColors | None = None
    avatar_url: str | None = Field(
        default=None, max_length=2000, pattern=r"^https://[^\s\"'<>()\\]+$", description="An https:// image URL."
    )
    position: Literal["bottom-right", "bottom-left"] | None = None
    input_placeholder: str | None = Field(default=None, min_length=1, max_length=120)
    tool_status: (
        dict[
            Annotated[str, Field(pattern=r"^(\*|[A-Za-z0-9_.-]{1,64})$")],
            Annotated[str, Field(min_length=1, max_length=80)],
        ]
        | None
    ) = Field(
        default=None,
        max_length=100,
        description='What the widget shows while a tool runs, by tool name ("*": any other tool), e.g. '
        '{"fetch_order_status": "Looking up your order…"}; built-in tools have their own lines.',
    )


class BotConfig(ConfigModel):
    """A chatbot or voicebot, as a business describes it."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra=_comment_keys_only,
        title="Chorus bot config",
    )

    config_metadata: ConfigMetadata
    system_prompt: SystemPrompt
    first_message: str | None = Field(default=None, description="Greeting shown or spoken first.")
    tools_available: list[ToolAvailability] = Field(default_factory=list)
    tools_needed: list[ToolNeeded] = Field(default_factory=list)
    integrations: list[Integration] = Field(default_factory=list)
    integrations_needed: list[IntegrationNeeded] = Field(default_factory=list)
    llm_config: LlmConfig
    database_config: DatabaseConfig | None = None
    vector_db_config: VectorDbConfig | None = None
    workflow_features: WorkflowFeatures = Field(default_factory=WorkflowFeatures)
    sip_config: SipConfig | None = None
    livekit_config: LivekitConfig | None = None
    voice_settings: VoiceSettings | None = None
    analysis_plan: AnalysisPlan | None = Field(default=None, description="Post-call analysis (voicebots).")
    call_webhook: CallWebhook | None = Field(default=None, description="The post-call webhook (voicebots).")
    knowledge: KnowledgeConfig | None = None
    webchat: Webchat | None = Field(default=None, description="The embeddable widget's look (chatbots).")

    @property
    def product_type(self) -> ProductType:
        return self.config_metadata.product_type

    @property
    def display_name(self) -> str:
        return self.config_metadata.name or self.system_prompt.role

    def implemented_tools(self) -> list[str]:
        return [t.tool_name for t in self.tools_available if t.status == "implemented"]

    def tool_needed(self, name: str) -> ToolNeeded | None:
        return next((t for t in self.tools_needed if t.tool_name == name), None)
