{{/*
Numbers and image references. Helm decodes every number of a values file (and of the values
stored for --reuse-values) as a float64, which Go's templates print as 1.7e+09 from a million
up: every number a template renders goes through int64 (or common.version below).
*/}}

{{/* A model version as text: 1700000000 (a float64 from a values file) renders as digits. */}}
{{- define "common.version" -}}
{{- if kindIs "string" . }}{{ . }}{{ else }}{{ int64 . }}{{ end }}
{{- end }}

{{/* An image reference: (dict "image" <repository/tag/digest> "tag" <default tag> "global" .Values.global).
     A digest wins over a tag; global.imageRegistry, when set, prefixes repositories that name
     no registry of their own. */}}
{{- define "common.image" -}}
{{- $repository := .image.repository }}
{{- $registry := "" }}
{{- if .global }}{{ $registry = .global.imageRegistry | default "" }}{{ end }}
{{- if and $registry (not (regexMatch "^[^/]+[.:][^/]*/" $repository)) (ne (first (splitList "/" $repository)) "localhost") }}
{{- $repository = printf "%s/%s" (trimSuffix "/" $registry) $repository }}
{{- end }}
{{- if .image.digest }}
{{- printf "%s@%s" $repository .image.digest }}
{{- else }}
{{- printf "%s:%s" $repository (toString (.image.tag | default .tag)) }}
{{- end }}
{{- end }}

{{/* A number that may have a fraction (seconds): 30 -> "30", 2.5 -> "2.5", 1000000 -> "1000000". */}}
{{- define "common.number" -}}
{{- $f := float64 . }}
{{- if eq $f (float64 (int64 $f)) }}{{ int64 $f }}{{ else }}{{ $f }}{{ end }}
{{- end }}
