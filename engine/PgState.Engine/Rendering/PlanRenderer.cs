using System.Text;
using System.Text.Json;
using PgState.Engine.Planning;
using PgState.Engine.Resources;

namespace PgState.Engine.Rendering;

public enum OutputFormat
{
    Text,
    Markdown,
    Json,
}

/// <summary>Turns plans into text for a terminal, markdown for a pull request, or versioned JSON.</summary>
public static class PlanRenderer
{
    public const int FormatVersion = 1;

    public const string Sensitive = "(sensitive)";

    public static string Render(IReadOnlyList<HostPlan> plans, OutputFormat format, bool colour = false) => format switch
    {
        OutputFormat.Markdown => string.Join("\n", plans.Select(RenderMarkdown)),
        OutputFormat.Json => RenderJson(plans),
        _ => string.Join("\n", plans.Select(p => RenderText(p, colour))),
    };

    private static string? Shown(ResourceChange c, string? value) => c.Sensitive && value is not null ? Sensitive : value;

    private static string Quote(string? value) => value is null ? "(none)" : "\"" + value.Replace("\\", "\\\\").Replace("\"", "\\\"") + "\"";

    public static string RenderText(HostPlan plan, bool colour)
    {
        string Paint(string code, string s) => colour ? $"\u001b[{code}m{s}\u001b[0m" : s;
        string SymbolColour(ChangeAction a) => a switch
        {
            ChangeAction.Create => "32",
            ChangeAction.Delete => "31",
            ChangeAction.Replace => "35",
            _ => "33",
        };
        var sb = new StringBuilder();
        sb.Append("pgstate plan for host \"").Append(plan.Host).Append("\" (").Append(plan.Target).Append(")\n\n");
        if (plan.Changes.Count == 0)
        {
            sb.Append("No changes. The host matches the manifest.\n");
        }
        foreach (var c in plan.Changes)
        {
            sb.Append("  ").Append(Paint(SymbolColour(c.Action), c.Action.Symbol())).Append(' ').Append(c.Address);
            sb.Append(c.Action switch
            {
                ChangeAction.Create => $" = {Quote(Shown(c, c.After))}",
                ChangeAction.Delete => $" (was {Quote(Shown(c, c.Before))})",
                _ => $": {Quote(Shown(c, c.Before))} -> {Quote(Shown(c, c.After))}",
            });
            if (c.Activation != Activation.None)
            {
                sb.Append(Paint(c.Activation == Activation.Restart ? "1;33" : "2", c.Activation == Activation.Restart ? "  [restart required]" : "  [reload]"));
            }
            sb.Append('\n');
            if (c.Note is not null)
            {
                sb.Append("      # ").Append(c.Note).Append('\n');
            }
        }
        if (plan.Pending.Count > 0)
        {
            sb.Append("\nWritten but not active yet:\n");
            foreach (var p in plan.Pending)
            {
                sb.Append("  ").Append(Paint("36", "…")).Append(' ').Append(p.Address).Append(" = ").Append(Quote(p.Value))
                  .Append(": ").Append(p.Needs == Activation.Restart ? "restart pending" : "reload pending")
                  .Append(" — ").Append(p.Note).Append('\n');
            }
        }
        if (plan.Warnings.Count > 0)
        {
            sb.Append("\nWarnings:\n");
            foreach (var w in plan.Warnings)
            {
                sb.Append("  ").Append(Paint("1;33", "!")).Append(' ');
                if (w.Address is not null)
                {
                    sb.Append(w.Address).Append(": ");
                }
                sb.Append(w.Message).Append('\n');
            }
        }
        sb.Append('\n').Append(Paint("1", plan.SummaryLine)).Append('\n');
        if (plan.RestartLine is { } restart)
        {
            sb.Append(restart).Append(plan.RestartPolicy == Manifests.RestartPolicy.Never
                ? " restart.policy is never: pgstate will not restart the server; it stays pending until you do.\n"
                : " restart.policy is allowed: apply restarts the server.\n");
        }
        return sb.ToString();
    }

    private static string Cell(string? value) => value is null ? "" : value.Length == 0 ? "*(empty)*" : "`" + value.Replace("`", "'").Replace("|", "\\|").Replace("\n", " ") + "`";

    public static string RenderMarkdown(HostPlan plan)
    {
        var sb = new StringBuilder();
        sb.Append("### pgstate plan for `").Append(plan.Host).Append("`\n\n");
        sb.Append("**").Append(plan.SummaryLine).Append("**\n\n");
        if (plan.RestartLine is { } restart)
        {
            sb.Append("> [!WARNING]\n> ").Append(restart)
              .Append(plan.RestartPolicy == Manifests.RestartPolicy.Never ? " `restart.policy: never` — it stays pending until someone restarts PostgreSQL." : " `restart.policy: allowed` — apply restarts PostgreSQL.")
              .Append("\n\n");
        }
        if (plan.Changes.Count == 0)
        {
            sb.Append("No changes. The host matches the manifest.\n\n");
        }
        else
        {
            sb.Append("| | address | before | after | activation |\n|---|---|---|---|---|\n");
            foreach (var c in plan.Changes)
            {
                sb.Append("| ").Append(c.Action.Symbol()).Append(" | `").Append(c.Address).Append("` | ")
                  .Append(Cell(Shown(c, c.Before))).Append(" | ").Append(Cell(Shown(c, c.After))).Append(" | ")
                  .Append(c.Activation == Activation.None ? "" : c.Activation.Word()).Append(" |\n");
            }
            sb.Append('\n');
            foreach (var c in plan.Changes.Where(c => c.Note is not null))
            {
                sb.Append("- `").Append(c.Address).Append("`: ").Append(c.Note).Append('\n');
            }
            if (plan.Changes.Any(c => c.Note is not null))
            {
                sb.Append('\n');
            }
        }
        if (plan.Pending.Count > 0)
        {
            sb.Append("**Written but not active yet**\n\n");
            foreach (var p in plan.Pending)
            {
                sb.Append("- `").Append(p.Address).Append("` = ").Append(Cell(p.Value)).Append(": ")
                  .Append(p.Needs == Activation.Restart ? "restart pending" : "reload pending").Append(" — ").Append(p.Note).Append('\n');
            }
            sb.Append('\n');
        }
        if (plan.Warnings.Count > 0)
        {
            sb.Append("**Warnings**\n\n");
            foreach (var w in plan.Warnings)
            {
                sb.Append("- ").Append(w.Address is null ? "" : $"`{w.Address}`: ").Append(w.Message).Append('\n');
            }
            sb.Append('\n');
        }
        return sb.ToString();
    }

    public static string RenderJson(IReadOnlyList<HostPlan> plans)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteNumber("formatVersion", FormatVersion);
            w.WriteStartArray("plans");
            foreach (var plan in plans)
            {
                w.WriteStartObject();
                w.WriteString("host", plan.Host);
                w.WriteString("target", plan.Target);
                w.WriteString("fingerprint", plan.Fingerprint);
                w.WriteString("restartPolicy", plan.RestartPolicy.ToString().ToLowerInvariant());
                w.WriteStartArray("changes");
                foreach (var c in plan.Changes)
                {
                    w.WriteStartObject();
                    w.WriteString("address", c.Address);
                    w.WriteString("module", c.Module);
                    w.WriteString("action", c.Action.Word());
                    w.WriteString("before", Shown(c, c.Before));
                    w.WriteString("after", Shown(c, c.After));
                    w.WriteString("activation", c.Activation.Word());
                    w.WriteBoolean("sensitive", c.Sensitive);
                    if (c.Note is not null)
                    {
                        w.WriteString("note", c.Note);
                    }
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteStartArray("pending");
                foreach (var p in plan.Pending)
                {
                    w.WriteStartObject();
                    w.WriteString("address", p.Address);
                    w.WriteString("module", p.Module);
                    w.WriteString("value", p.Value);
                    w.WriteString("needs", p.Needs.Word());
                    w.WriteString("note", p.Note);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteStartArray("warnings");
                foreach (var x in plan.Warnings)
                {
                    w.WriteStartObject();
                    w.WriteString("address", x.Address);
                    w.WriteString("module", x.Module);
                    w.WriteString("message", x.Message);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteStartObject("summary");
                w.WriteNumber("add", plan.ToAdd);
                w.WriteNumber("change", plan.ToChange);
                w.WriteNumber("destroy", plan.ToDestroy);
                w.WriteNumber("needRestart", plan.NeedRestart);
                w.WriteBoolean("hasWork", plan.HasWork);
                w.WriteEndObject();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(stream.ToArray()) + "\n";
    }
}
