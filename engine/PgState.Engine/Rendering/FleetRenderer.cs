using System.Text;
using PgState.Engine.Planning;

namespace PgState.Engine.Rendering;

/// <summary>
/// Many hosts' plans as one review: a table with a row per host (add, change, destroy, restart,
/// warnings), then each host's own plan. The markdown is one pull-request comment for a fleet,
/// capped under GitHub's limit: the table and every host's heading, summary and warnings are
/// always there; changes are left out whole, fairly across hosts, and the comment says how many.
/// </summary>
internal static class FleetRenderer
{
    public static string Render(IReadOnlyList<HostPlan> plans, OutputFormat format, bool colour = false) => format switch
    {
        OutputFormat.Markdown => RenderMarkdown(plans),
        OutputFormat.Json => PlanRenderer.RenderJson(plans, null, null, fleet: true),
        _ => RenderText(plans, colour),
    };

    private static int Warnings(HostPlan p) => p.Warnings.Count;

    private static string Status(HostPlan p) => p.HasWork ? "changes" : p.Pending.Count > 0 ? "pending" : "in sync";

    /// <summary>Hosts named in more than one plan: a reviewer must know which plan is meant.</summary>
    private static IReadOnlyList<string> Duplicates(IReadOnlyList<HostPlan> plans) =>
        [.. plans.GroupBy(p => p.Host, StringComparer.Ordinal).Where(g => g.Count() > 1).Select(g => g.Key)];

    public static string SummaryLine(IReadOnlyList<HostPlan> plans) =>
        $"Fleet: {plans.Count(p => p.HasWork)} of {plans.Count} host(s) with changes — {plans.Sum(p => p.ToAdd)} to add, {plans.Sum(p => p.ToChange)} to change, {plans.Sum(p => p.ToDestroy)} to destroy.";

    public static string RenderText(IReadOnlyList<HostPlan> plans, bool colour)
    {
        var sb = new StringBuilder();
        sb.Append("pgstate plans for ").Append(plans.Count).Append(" hosts\n\n");
        var width = Math.Max(4, plans.Max(p => p.Host.Length));
        sb.Append("  ").Append("host".PadRight(width)).Append("  add  change  destroy  restart  warnings  status\n");
        foreach (var p in plans)
        {
            sb.Append("  ").Append(SafeText.Text(p.Host).PadRight(width))
              .Append(p.ToAdd.ToString(System.Globalization.CultureInfo.InvariantCulture).PadLeft(5))
              .Append(p.ToChange.ToString(System.Globalization.CultureInfo.InvariantCulture).PadLeft(8))
              .Append(p.ToDestroy.ToString(System.Globalization.CultureInfo.InvariantCulture).PadLeft(9))
              .Append(p.NeedRestart.ToString(System.Globalization.CultureInfo.InvariantCulture).PadLeft(9))
              .Append(Warnings(p).ToString(System.Globalization.CultureInfo.InvariantCulture).PadLeft(10))
              .Append("  ").Append(Status(p)).Append('\n');
        }
        foreach (var host in Duplicates(plans))
        {
            sb.Append("\n! host \"").Append(SafeText.Text(host)).Append("\" appears in more than one plan file\n");
        }
        sb.Append('\n').Append(SummaryLine(plans)).Append("\n\n");
        foreach (var p in plans)
        {
            sb.Append(PlanRenderer.RenderText(p, colour)).Append('\n');
        }
        return sb.ToString();
    }

    public static string RenderMarkdown(IReadOnlyList<HostPlan> plans) => RenderMarkdown(plans, PlanRenderer.MarkdownLimit);

    public static string RenderMarkdown(IReadOnlyList<HostPlan> plans, int limit)
    {
        var head = new StringBuilder();
        head.Append("### pgstate plan for ").Append(plans.Count).Append(" hosts\n\n");
        head.Append("**").Append(SummaryLine(plans)).Append("**\n\n");
        var deleting = plans.Where(p => p.ToDestroy > 0).ToList();
        if (deleting.Count > 0)
        {
            head.Append("> [!CAUTION]\n> Deletes on ").Append(string.Join(", ", deleting.Select(p => $"{SafeText.Code(p.Host)} ({p.ToDestroy})"))).Append(".\n\n");
        }
        var restarting = plans.Where(p => p.NeedRestart > 0).ToList();
        if (restarting.Count > 0)
        {
            head.Append("> [!WARNING]\n> A PostgreSQL restart is needed on ")
                .Append(string.Join(", ", restarting.Select(p => $"{SafeText.Code(p.Host)} ({(p.RestartPolicy == Manifests.RestartPolicy.Allowed ? "apply restarts it" : "restart.policy: never, stays pending")})")))
                .Append(".\n\n");
        }
        foreach (var host in Duplicates(plans))
        {
            head.Append("> [!NOTE]\n> Host ").Append(SafeText.Code(host)).Append(" appears in more than one plan file.\n\n");
        }
        head.Append("| host | add | change | destroy | restart | warnings | status |\n|---|---:|---:|---:|---:|---:|---|\n");
        foreach (var p in plans)
        {
            head.Append("| ").Append(SafeText.Code(p.Host)).Append(" | ").Append(p.ToAdd).Append(" | ").Append(p.ToChange).Append(" | ")
                .Append(p.ToDestroy).Append(" | ").Append(p.NeedRestart).Append(" | ").Append(Warnings(p)).Append(" | ").Append(Status(p)).Append(" |\n");
        }
        head.Append('\n');

        // Hosts with something to show get a details block each; the budget left after the table is
        // shared out so that small hosts are shown whole and the large ones split what remains.
        var shown = plans.Select((p, i) => (Plan: p, Index: i)).Where(x => x.Plan.Changes.Count > 0 || x.Plan.Pending.Count > 0 || x.Plan.Warnings.Count > 0).ToList();
        var sections = new string[plans.Count];
        var budget = limit - head.Length - 300;
        var left = shown.Count;
        foreach (var (plan, index) in shown.OrderBy(x => PlanRenderer.RenderMarkdown(x.Plan, int.MaxValue).Length))
        {
            var share = Math.Max(0, budget / Math.Max(1, left));
            var section = Section(plan, share);
            sections[index] = section;
            budget -= section.Length;
            left--;
        }
        var body = new StringBuilder();
        foreach (var section in sections.Where(s => s is not null))
        {
            body.Append(section);
        }
        return head.ToString() + body;
    }

    private static string Section(HostPlan plan, int share)
    {
        var open = $"<details><summary><b>{SafeText.Markdown(plan.Host)}</b>: {plan.SummaryLine}{(plan.Warnings.Count > 0 ? $" {plan.Warnings.Count} warning(s)." : "")}</summary>\n\n";
        const string close = "\n</details>\n\n";
        var room = share - open.Length - close.Length;
        var markdown = PlanRenderer.RenderMarkdown(plan, room);
        if (markdown.Length > room)
        {
            // Even without its change rows the host does not fit: keep its summary and say where the rest is.
            markdown = $"#### pgstate plan for {SafeText.Code(plan.Host)}\n\n**{plan.SummaryLine}**\n\n> [!NOTE]\n> This host's details ({plan.Changes.Count} change(s), {plan.Warnings.Count} warning(s)) are left out to stay under GitHub's comment size limit; `pgstate show` on its plan file has them.\n";
        }
        else if (markdown.StartsWith("### ", StringComparison.Ordinal))
        {
            markdown = "#" + markdown; // one level below the fleet heading
        }
        return open + markdown + close;
    }

    /// <summary>Fleet totals for the JSON form.</summary>
    internal static void WriteSummary(System.Text.Json.Utf8JsonWriter w, IReadOnlyList<HostPlan> plans)
    {
        w.WriteStartObject("fleet");
        w.WriteNumber("hosts", plans.Count);
        w.WriteNumber("hostsWithWork", plans.Count(p => p.HasWork));
        w.WriteNumber("add", plans.Sum(p => p.ToAdd));
        w.WriteNumber("change", plans.Sum(p => p.ToChange));
        w.WriteNumber("destroy", plans.Sum(p => p.ToDestroy));
        w.WriteNumber("needRestart", plans.Sum(p => p.NeedRestart));
        w.WriteNumber("warnings", plans.Sum(Warnings));
        w.WriteStartArray("duplicateHosts");
        foreach (var host in Duplicates(plans))
        {
            w.WriteStringValue(host);
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }
}
