using System.Text;
using System.Text.Json;
using PgState.Engine.Planning;
using PgState.Engine.Resources;

namespace PgState.Engine.Rendering;

internal enum OutputFormat
{
    Text,
    Markdown,
    Json,
}

/// <summary>Turns plans into text for a terminal, markdown for a pull request, or versioned JSON.</summary>
internal static class PlanRenderer
{
    public const int FormatVersion = Planning.SavedPlanFormat.CurrentVersion;

    public const string Sensitive = "(sensitive)";

    public static string Render(IReadOnlyList<HostPlan> plans, OutputFormat format, bool colour = false) => format switch
    {
        OutputFormat.Markdown => string.Join("\n", plans.Select(p => RenderMarkdown(p))),
        OutputFormat.Json => RenderJson(plans),
        _ => string.Join("\n", plans.Select(p => RenderText(p, colour))),
    };

    /// <summary>The one place a sensitive value becomes "(sensitive)": modules never write it.</summary>
    private static string? Shown(ResourceChange c, string? value) => c.Sensitive ? Sensitive : value;

    private static string Quote(string? value) => value is null ? "(none)" : "\"" + SafeText.Text(value.Replace("\\", "\\\\").Replace("\"", "\\\"")) + "\"";

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
        sb.Append("pgstate plan for host \"").Append(SafeText.Text(plan.Host)).Append("\" (").Append(SafeText.Text(plan.Target)).Append(")\n\n");
        if (plan.Changes.Count == 0)
        {
            sb.Append("No changes. The host matches the manifest.\n");
        }
        foreach (var c in plan.Changes)
        {
            sb.Append("  ").Append(Paint(SymbolColour(c.Action), c.Action.Symbol())).Append(' ').Append(SafeText.Text(c.Address));
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
                sb.Append("      # ").Append(SafeText.Text(c.Note)).Append('\n');
            }
        }
        if (plan.Pending.Count > 0)
        {
            sb.Append("\nWritten but not active yet:\n");
            foreach (var p in plan.Pending)
            {
                sb.Append("  ").Append(Paint("36", "…")).Append(' ').Append(SafeText.Text(p.Address)).Append(" = ").Append(Quote(p.Value))
                  .Append(": ").Append(p.Needs == Activation.Restart ? "restart pending" : "reload pending")
                  .Append(" — ").Append(SafeText.Text(p.Note)).Append('\n');
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
                    sb.Append(SafeText.Text(w.Address)).Append(": ");
                }
                sb.Append(SafeText.Text(w.Message)).Append('\n');
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

    private static string Cell(string? value) => value is null ? "" : value.Length == 0 ? "*(empty)*" : SafeText.Code(value);

    /// <summary>GitHub stops a comment at 65,536 characters; stay under it with room for a wrapper.</summary>
    public const int MarkdownLimit = 60_000;

    /// <summary>
    /// Markdown for a pull-request comment: the heading and summary stay outside any collapsed
    /// block, deletions and restarts are called out first, a table counts changes per module, and
    /// each module's changes sit in a &lt;details&gt; block. Past the size limit whole entries are
    /// left out, and the comment says how many.
    /// </summary>
    public static string RenderMarkdown(HostPlan plan) => RenderMarkdown(plan, MarkdownLimit);

    public static string RenderMarkdown(HostPlan plan, int limit)
    {
        var head = new StringBuilder();
        head.Append("### pgstate plan for ").Append(SafeText.Code(plan.Host)).Append("\n\n");
        head.Append("**").Append(plan.SummaryLine).Append("**\n\n");
        var deletes = plan.Changes.Where(c => c.Action is ChangeAction.Delete or ChangeAction.Replace).ToList();
        if (deletes.Count > 0)
        {
            head.Append("> [!CAUTION]\n> This plan **deletes** ").Append(deletes.Count).Append(" resource(s): ")
                .Append(string.Join(", ", deletes.Take(10).Select(d => SafeText.Code(d.Address)))).Append(deletes.Count > 10 ? ", …" : "").Append("\n\n");
        }
        if (plan.RestartLine is { } restart)
        {
            var restarts = plan.Changes.Where(c => c.Activation == Activation.Restart).Select(c => c.Address)
                .Concat(plan.Pending.Where(p => p.Needs == Activation.Restart).Select(p => p.Address)).ToList();
            head.Append("> [!WARNING]\n> ").Append(restart).Append(' ')
                .Append(plan.RestartPolicy == Manifests.RestartPolicy.Never ? "`restart.policy: never` — it stays pending until someone restarts PostgreSQL: " : "`restart.policy: allowed` — apply restarts PostgreSQL: ")
                .Append(string.Join(", ", restarts.Select(SafeText.Code))).Append("\n\n");
        }
        if (plan.Changes.Count == 0)
        {
            head.Append("No changes. The host matches the manifest.\n\n");
        }
        else
        {
            head.Append("| module | add | change | destroy |\n|---|---:|---:|---:|\n");
            foreach (var group in plan.Changes.GroupBy(c => c.Module))
            {
                head.Append("| ").Append(SafeText.Markdown(group.Key)).Append(" | ")
                    .Append(group.Count(c => c.Action is ChangeAction.Create or ChangeAction.Replace)).Append(" | ")
                    .Append(group.Count(c => c.Action == ChangeAction.Update)).Append(" | ")
                    .Append(group.Count(c => c.Action is ChangeAction.Delete or ChangeAction.Replace)).Append(" |\n");
            }
            head.Append('\n');
        }
        var tail = new StringBuilder();
        if (plan.Pending.Count > 0)
        {
            tail.Append("**Written but not active yet**\n\n");
            foreach (var p in plan.Pending)
            {
                tail.Append("- ").Append(SafeText.Code(p.Address)).Append(" = ").Append(Cell(p.Value)).Append(": ")
                    .Append(p.Needs == Activation.Restart ? "restart pending" : "reload pending").Append(" — ").Append(SafeText.Markdown(p.Note)).Append('\n');
            }
            tail.Append('\n');
        }
        if (plan.Warnings.Count > 0)
        {
            tail.Append("**Warnings**\n\n");
            // Warnings come before the change tables, but even they cannot take the whole comment (600 live-session
            // warnings made one GitHub refuses): at most half of it, the rest counted.
            var shown = 0;
            foreach (var w in plan.Warnings)
            {
                var line = "- " + (w.Address is null ? "" : SafeText.Code(w.Address) + ": ") + SafeText.Markdown(w.Message) + "\n";
                if (head.Length + tail.Length + line.Length > limit / 2)
                {
                    break;
                }
                tail.Append(line);
                shown++;
            }
            if (shown < plan.Warnings.Count)
            {
                tail.Append("- … and ").Append(plan.Warnings.Count - shown).Append(" more warning(s), left out to stay under GitHub's comment size limit: the job log and `pgstate show plan.json` have them all\n");
            }
            tail.Append('\n');
        }

        // Module blocks, entry by entry, within what the limit leaves after head and tail.
        var budget = limit - head.Length - tail.Length - 200;
        var body = new StringBuilder();
        var leftOut = 0;
        // Under the cap, what a reviewer must see comes first: modules that delete or restart, then small ones.
        var groups = plan.Changes.GroupBy(c => c.Module)
            .OrderByDescending(g => g.Any(c => c.Action is ChangeAction.Delete or ChangeAction.Replace || c.Activation == Activation.Restart))
            .ThenBy(g => g.Count());
        foreach (var group in groups)
        {
            var open = $"<details><summary><b>{SafeText.Markdown(group.Key)}</b>: {group.Count()} change(s)</summary>\n\n| | address | before | after | activation |\n|---|---|---|---|---|\n";
            const string close = "\n</details>\n\n";
            if (body.Length + open.Length + close.Length > budget)
            {
                leftOut += group.Count();
                continue;
            }
            body.Append(open);
            foreach (var c in group)
            {
                var row = $"| {c.Action.Symbol()} | {SafeText.Code(c.Address)} | {Cell(Shown(c, c.Before))} | {Cell(Shown(c, c.After))} | {(c.Activation == Activation.None ? "" : c.Activation.Word())} |\n"
                    + (c.Note is null ? "" : $"| | ↳ {SafeText.Markdown(c.Note)} | | | |\n");
                if (body.Length + row.Length + close.Length > budget)
                {
                    leftOut++;
                    continue;
                }
                body.Append(row);
            }
            body.Append(close);
        }
        if (leftOut > 0)
        {
            body.Append("> [!NOTE]\n> ").Append(leftOut).Append(" change(s) left out to stay under GitHub's comment size limit; the job log and `pgstate show plan.json` have the full plan.\n\n");
        }
        return head.ToString() + body + tail;
    }

    public static string RenderJson(IReadOnlyList<HostPlan> plans) => RenderJson(plans, null, null);

    /// <summary>The JSON plan; with manifests it is a saved plan that `apply plan.json` can check.</summary>
    public static string RenderJson(IReadOnlyList<HostPlan> plans, IReadOnlyList<SavedManifest>? manifests, SavedOverrides? overrides, bool fleet = false)
    {
        var digest = manifests is null ? null : SavedPlanFormat.Digest(manifests, overrides ?? new SavedOverrides(null, null, null), plans);
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteNumber("formatVersion", FormatVersion);
            if (fleet)
            {
                FleetRenderer.WriteSummary(w, plans);
            }
            if (digest is not null)
            {
                w.WriteString("digest", digest);
            }
            if (manifests is not null)
            {
                w.WriteStartArray("manifests");
                foreach (var m in manifests)
                {
                    w.WriteStartObject();
                    w.WriteString("path", m.Path);
                    w.WriteString("sha256", m.Sha256);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteStartObject("connectionOverrides");
                w.WriteString("host", overrides?.Host);
                if (overrides?.Port is { } port)
                {
                    w.WriteNumber("port", port);
                }
                else
                {
                    w.WriteNull("port");
                }
                w.WriteString("user", overrides?.User);
                w.WriteEndObject();
            }
            w.WriteStartArray("plans");
            foreach (var plan in plans)
            {
                w.WriteStartObject();
                w.WriteString("host", plan.Host);
                w.WriteString("target", plan.Target);
                w.WriteString("fingerprint", plan.Fingerprint);
                w.WriteString("restartPolicy", plan.RestartPolicy.ToString().ToLowerInvariant());
                if (plan.Server is { } server)
                {
                    w.WriteStartObject("server");
                    w.WriteString("systemIdentifier", server.SystemIdentifier);
                    w.WriteString("dataDirectory", server.DataDirectory);
                    w.WriteNumber("port", server.Port);
                    w.WriteString("version", server.Version);
                    w.WriteEndObject();
                }
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
                    w.WriteString("fingerprint", plan.SavedFingerprints?.GetValueOrDefault(c.Address) ?? SavedPlanFormat.Fingerprint(c));
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
