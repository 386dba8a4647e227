using System.Collections.Concurrent;
using System.Reflection;
using Scriban;
using Scriban.Runtime;

namespace PgState.Engine.Templates;

/// <summary>Renders a module's embedded Scriban template as a pure function of a model.</summary>
public static class TemplateRenderer
{
    private static readonly ConcurrentDictionary<(Assembly, string), Template> Cache = new();

    /// <summary>Warms Scriban up on another core (first parse and render cost ~30 ms of JIT).</summary>
    public static void Preload() => ThreadPool.UnsafeQueueUserWorkItem(_ =>
    {
        try
        {
            Template.Parse("{{ x }}").Render(new { x = 1 });
        }
        catch (Exception)
        {
            // only a warm-up
        }
    }, null);

    public static string Render(Assembly assembly, string resourceName, IReadOnlyDictionary<string, object?> model)
    {
        var template = Cache.GetOrAdd((assembly, resourceName), key =>
        {
            using var stream = key.Item1.GetManifestResourceStream(key.Item2)
                ?? throw new InvalidOperationException($"template {key.Item2} is not embedded in {key.Item1.GetName().Name}");
            using var reader = new StreamReader(stream);
            var parsed = Template.Parse(reader.ReadToEnd(), key.Item2);
            if (parsed.HasErrors)
            {
                throw new InvalidOperationException($"template {key.Item2}: {string.Join("; ", parsed.Messages)}");
            }
            return parsed;
        });
        var globals = new ScriptObject();
        foreach (var (name, value) in model)
        {
            globals[name] = value;
        }
        // LoopLimit 0: no cap; a pg_hba.conf may hold thousands of rules.
        var context = new TemplateContext { StrictVariables = true, LoopLimit = 0 };
        context.PushGlobal(globals);
        return template.Render(context);
    }
}
