//! The wgpu device context: adapter choice, device, the three pipelines, and a
//! pool of buffers that grow on demand and are reused for every batch.
//!
//! Built once per backend (STYLE.md section 5, "build once, dispatch many"):
//! the shaders are embedded with `include_str!` and compiled when the backend
//! opens; buffers are kept and only re-created when a larger batch arrives.
//!
//! Errors: wgpu reports validation and out-of-memory errors asynchronously and,
//! by default, panics on an uncaptured one. We install an uncaptured-error
//! handler that records the message instead, and wrap each operation in error
//! scopes, so a device problem becomes an ordinary `Err` naming the backend.

use anyhow::{anyhow, bail, Context, Result};
use std::num::NonZeroU64;
use std::sync::{Arc, Mutex};

/// Invocations per workgroup, as `WG` in every shader.
pub const WORKGROUP: u32 = 64;

/// The embedded WGSL sources, one file per op (file stem = op name).
pub const MINHASH_WGSL: &str = include_str!("../../../shaders/minhash_signatures.wgsl");
pub const BANDS_WGSL: &str = include_str!("../../../shaders/band_hashes.wgsl");
pub const NGRAM_WGSL: &str = include_str!("../../../shaders/ngram_membership.wgsl");

/// One compute pipeline with its explicit bind group layout.
pub struct Kernel {
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
}

/// How a binding is used by a shader.
#[derive(Clone, Copy)]
enum Slot {
    Uniform,
    Read,
    ReadWrite,
}

/// Buffers kept between calls, by role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Buf {
    MinhashParams,
    Hashes,
    Tasks,
    PermA,
    PermB,
    Signatures,
    BandParams,
    BandInput,
    BandOutput,
    NgramParams,
    Queries,
    NgramOutput,
    Readback0,
    Readback1,
}

impl Buf {
    fn usage(self) -> wgpu::BufferUsages {
        use wgpu::BufferUsages as U;
        match self {
            Buf::MinhashParams | Buf::BandParams | Buf::NgramParams => U::UNIFORM | U::COPY_DST,
            Buf::Signatures | Buf::BandOutput | Buf::NgramOutput => U::STORAGE | U::COPY_SRC,
            Buf::Readback0 | Buf::Readback1 => U::MAP_READ | U::COPY_DST,
            _ => U::STORAGE | U::COPY_DST,
        }
    }
}

/// The device, its queue, pipelines and buffers. Used behind a mutex: one
/// operation at a time per device.
pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub minhash: Kernel,
    pub fill: Kernel,
    pub bands: Kernel,
    pub ngram: Kernel,
    pub limits: wgpu::Limits,
    buffers: std::collections::HashMap<Buf, wgpu::Buffer>,
    /// The uploaded n-gram table: (generation, buffer, number of keys).
    pub table: Option<(u64, wgpu::Buffer, usize)>,
    uncaptured: Arc<Mutex<Option<String>>>,
}

/// Every Vulkan, Metal or DX12 adapter: name, device type, backend, and
/// whether it has compute shaders, e.g. `llvmpipe (LLVM 15.0.6, 256 bits)
/// (Cpu, Vulkan, software)`.
pub fn list_adapters() -> Vec<String> {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = wgpu::Backends::PRIMARY;
    let adapters = super::quiet_probe::quiet(|| {
        let instance = wgpu::Instance::new(desc);
        pollster::block_on(instance.enumerate_adapters(wgpu::Backends::PRIMARY))
    });
    adapters
        .into_iter()
        .map(|a| {
            let info = a.get_info();
            let compute = a
                .get_downlevel_capabilities()
                .flags
                .contains(wgpu::DownlevelFlags::COMPUTE_SHADERS);
            format!(
                "{} ({:?}, {:?}, {}{})",
                info.name,
                info.device_type,
                info.backend,
                if info.device_type == wgpu::DeviceType::Cpu {
                    "software"
                } else {
                    "hardware"
                },
                if compute { "" } else { ", no compute shaders" }
            )
        })
        .collect()
}

/// Picks an adapter: a hardware one (discrete, integrated or virtual GPU)
/// first; a software one (Mesa lavapipe, SwiftShader) only when
/// `allow_software`. Returns the adapter and why others were passed over.
fn choose_adapter(allow_software: bool) -> Result<wgpu::Adapter> {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    // Vulkan, Metal and DX12: the backends with dependable compute. GL's
    // compute shaders are a downlevel path we do not test.
    desc.backends = wgpu::Backends::PRIMARY;
    // The instance lives as long as its adapters are used.
    let (_instance, adapters) = super::quiet_probe::quiet(|| {
        let instance = wgpu::Instance::new(desc);
        let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::PRIMARY));
        (instance, adapters)
    });
    if adapters.is_empty() {
        bail!("no Vulkan, Metal or DX12 adapter found (is a Vulkan driver such as mesa-vulkan-drivers installed?)");
    }
    let rank = |t: wgpu::DeviceType| match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    };
    let mut seen = Vec::new();
    let mut best: Option<wgpu::Adapter> = None;
    for a in adapters {
        let info = a.get_info();
        seen.push(format!(
            "{} ({:?}, {:?})",
            info.name, info.device_type, info.backend
        ));
        let compute = a
            .get_downlevel_capabilities()
            .flags
            .contains(wgpu::DownlevelFlags::COMPUTE_SHADERS);
        let hardware = matches!(
            info.device_type,
            wgpu::DeviceType::DiscreteGpu
                | wgpu::DeviceType::IntegratedGpu
                | wgpu::DeviceType::VirtualGpu
        );
        if !compute || !(hardware || allow_software) {
            continue;
        }
        let better = match &best {
            None => true,
            Some(b) => rank(info.device_type) < rank(b.get_info().device_type),
        };
        if better {
            best = Some(a);
        }
    }
    best.ok_or_else(|| {
        if allow_software {
            anyhow!("no adapter with compute shaders among: {}", seen.join("; "))
        } else {
            anyhow!(
                "no hardware GPU adapter (software adapters are used only with --backend wgpu): {}",
                seen.join("; ")
            )
        }
    })
}

fn layout_entry(binding: u32, slot: Slot) -> wgpu::BindGroupLayoutEntry {
    // Params structs are 16 bytes; storage arrays are checked at dispatch.
    let (ty, min) = match slot {
        Slot::Uniform => (wgpu::BufferBindingType::Uniform, NonZeroU64::new(16)),
        Slot::Read => (wgpu::BufferBindingType::Storage { read_only: true }, None),
        Slot::ReadWrite => (wgpu::BufferBindingType::Storage { read_only: false }, None),
    };
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty,
            has_dynamic_offset: false,
            min_binding_size: min,
        },
        count: None,
    }
}

fn kernel(
    device: &wgpu::Device,
    module: &wgpu::ShaderModule,
    entry: &str,
    slots: &[Slot],
) -> Kernel {
    let entries: Vec<_> = slots
        .iter()
        .enumerate()
        .map(|(i, &s)| layout_entry(i as u32, s))
        .collect();
    let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some(entry),
        entries: &entries,
    });
    let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some(entry),
        bind_group_layouts: &[Some(&layout)],
        immediate_size: 0,
    });
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(entry),
        layout: Some(&pipeline_layout),
        module,
        entry_point: Some(entry),
        compilation_options: wgpu::PipelineCompilationOptions::default(),
        cache: None,
    });
    Kernel { pipeline, layout }
}

impl Gpu {
    /// Opens the adapter and device and compiles the three shaders.
    pub fn open(allow_software: bool) -> Result<(Gpu, wgpu::AdapterInfo)> {
        let adapter = choose_adapter(allow_software)?;
        let info = adapter.get_info();
        // We ask for the adapter's own limits: the larger the storage
        // bindings, the fewer round trips per batch.
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("tritter-gpu"),
            required_features: wgpu::Features::empty(),
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .with_context(|| format!("could not open wgpu device {}", info.name))?;

        let uncaptured = Arc::new(Mutex::new(None::<String>));
        let sink = uncaptured.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut slot) = sink.lock() {
                slot.get_or_insert_with(|| e.to_string());
            }
        }));

        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = |label: &str, src: &'static str| {
            device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(label),
                source: wgpu::ShaderSource::Wgsl(src.into()),
            })
        };
        let m_minhash = module("minhash_signatures.wgsl", MINHASH_WGSL);
        let m_bands = module("band_hashes.wgsl", BANDS_WGSL);
        let m_ngram = module("ngram_membership.wgsl", NGRAM_WGSL);
        use Slot::*;
        let minhash = kernel(
            &device,
            &m_minhash,
            "minhash_signatures",
            &[Uniform, Read, Read, Read, Read, ReadWrite],
        );
        // fill_max uses only binding 5 of the same module; its own layout
        // declares the one binding it reads.
        let fill = {
            let entries = [layout_entry(5, ReadWrite)];
            let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some("fill_max"),
                entries: &entries,
            });
            let pl = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some("fill_max"),
                bind_group_layouts: &[Some(&layout)],
                immediate_size: 0,
            });
            let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some("fill_max"),
                layout: Some(&pl),
                module: &m_minhash,
                entry_point: Some("fill_max"),
                compilation_options: wgpu::PipelineCompilationOptions::default(),
                cache: None,
            });
            Kernel { pipeline, layout }
        };
        let bands = kernel(
            &device,
            &m_bands,
            "band_hashes",
            &[Uniform, Read, ReadWrite],
        );
        let ngram = kernel(
            &device,
            &m_ngram,
            "ngram_membership",
            &[Uniform, Read, Read, ReadWrite],
        );
        if let Some(e) = pollster::block_on(scope.pop()) {
            bail!("the wgpu shaders failed to compile on {}: {e}", info.name);
        }
        let limits = device.limits();
        Ok((
            Gpu {
                device,
                queue,
                minhash,
                fill,
                bands,
                ngram,
                limits,
                buffers: Default::default(),
                table: None,
                uncaptured,
            },
            info,
        ))
    }

    /// Largest storage binding, in bytes, that is also a valid buffer size.
    pub fn max_binding(&self) -> u64 {
        self.limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size)
    }

    /// The buffer for `role`, at least `bytes` long (grown to the next power
    /// of two, within the device's limits, so that growth is rare).
    pub fn buffer(&mut self, role: Buf, bytes: u64) -> Result<wgpu::Buffer> {
        let bytes = bytes.max(16).next_multiple_of(16);
        if let Some(b) = self.buffers.get(&role) {
            if b.size() >= bytes {
                return Ok(b.clone());
            }
        }
        let max = self.limits.max_buffer_size;
        if bytes > max {
            bail!("a {bytes}-byte {role:?} buffer exceeds the device's limit of {max} bytes");
        }
        let size = bytes.next_power_of_two().min(max);
        let b = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("tritter-gpu"),
            size,
            usage: role.usage(),
            mapped_at_creation: false,
        });
        self.buffers.insert(role, b.clone());
        Ok(b)
    }

    /// Raises any error recorded by the uncaptured-error handler.
    pub fn check_uncaptured(&self) -> Result<()> {
        let msg = self.uncaptured.lock().ok().and_then(|mut s| s.take());
        match msg {
            Some(m) => bail!("wgpu device error: {m}"),
            None => Ok(()),
        }
    }

    /// Maps `readback[..bytes]` after `submission` completes and hands the
    /// bytes to `consume`.
    pub fn read_back(
        &self,
        readback: &wgpu::Buffer,
        bytes: u64,
        submission: wgpu::SubmissionIndex,
        consume: &mut dyn FnMut(&[u8]),
    ) -> Result<()> {
        if bytes == 0 {
            return Ok(());
        }
        let slice = readback.slice(0..bytes);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.device
            .poll(wgpu::PollType::Wait {
                submission_index: Some(submission),
                timeout: None,
            })
            .context("waiting for the wgpu device")?;
        rx.recv()
            .context("the wgpu map callback never ran")?
            .context("mapping a wgpu readback buffer")?;
        {
            let view = slice
                .get_mapped_range()
                .context("reading a mapped wgpu buffer")?;
            consume(&view);
        }
        readback.unmap();
        Ok(())
    }
}

/// A binding of `buf[0..bytes]`.
pub fn bind(binding: u32, buf: &wgpu::Buffer, bytes: u64) -> wgpu::BindGroupEntry<'_> {
    bind_at(binding, buf, 0, bytes)
}

/// A binding of `buf[offset..offset + bytes]`.
pub fn bind_at(
    binding: u32,
    buf: &wgpu::Buffer,
    offset: u64,
    bytes: u64,
) -> wgpu::BindGroupEntry<'_> {
    wgpu::BindGroupEntry {
        binding,
        resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: buf,
            offset,
            size: NonZeroU64::new(bytes.max(4)),
        }),
    }
}

/// Workgroup counts `(x, y)` covering `items` invocations, 1-D index
/// `(y * x_count + x) * WORKGROUP + local`, each dimension within `max_dim`.
pub fn grid_2d(items: u64, max_dim: u32) -> (u32, u32) {
    let groups = items.div_ceil(WORKGROUP as u64).max(1);
    let x = groups.min(max_dim as u64);
    let y = groups.div_ceil(x);
    (x as u32, y as u32)
}
